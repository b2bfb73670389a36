// Lint: typescript-eslint's recommended rules; `any` is an error outside test/.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  // native/criu/rpc_pb.ts is generated (npm run gen:criu): linted by its generator, not by us.
  { ignores: ["node_modules/", "build/", "dist/", "test/.work/", "native/criu/rpc_pb.ts"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  { files: ["test/**"], rules: { "@typescript-eslint/no-explicit-any": "off" } },
  { files: ["**/*.mjs", "**/*.js"], languageOptions: { globals: { process: "readonly", console: "readonly" } } },
)
