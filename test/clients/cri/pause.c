/* The pod sandbox's process, as Kubernetes' pause: holds the pod's namespaces open, reaps what is
 * reparented to it, and exits on SIGINT/SIGTERM. Built static so the image is this one file. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { _exit(128 + sig); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction q = { .sa_handler = quit }, r = { .sa_handler = reap, .sa_flags = SA_NOCLDSTOP };
  if (sigaction(SIGINT, &q, NULL) < 0 || sigaction(SIGTERM, &q, NULL) < 0 || sigaction(SIGCHLD, &r, NULL) < 0) return 1;
  for (;;) pause();
}
