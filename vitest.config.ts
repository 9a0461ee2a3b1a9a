import { configDefaults, defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The consumer test packs and installs the package: `npm run test:consumer` (vitest.consumer.config.ts).
    exclude: [...configDefaults.exclude, "test/consumer/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The JSON report is what .ci/run counts passed and failed tests from.
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-results.json" }
  }
})
