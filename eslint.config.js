// Lint and format in the Effect codebase's style: the `@effect/dprint` rule formats
// (2 spaces, 120 columns, no semicolons, double quotes) and typescript-eslint checks.
import effect from "@effect/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  // src/qemu/ is generated (npm run codegen), and checked against the generator's output as it is.
  { ignores: ["dist/**", "node_modules/**", "coverage/**", "tmp/**", "src/qemu/**", "test/fixtures/*/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { "@effect": effect },
    rules: {
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
      // Effect's own style: `interface X extends Schema.Type<typeof X> {}` names a schema's type.
      "@typescript-eslint/no-empty-object-type": ["error", { allowInterfaces: "with-single-extends" }],
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/consistent-type-imports": "error",
      "no-restricted-syntax": ["error", {
        selector: "ImportDeclaration[source.value='@effect/schema']",
        message: "@effect/schema is deprecated: Schema lives at effect/Schema"
      }]
    }
  }
)
