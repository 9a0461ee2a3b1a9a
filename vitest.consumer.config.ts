import { defineConfig } from "vitest/config"

// `npm run test:consumer`: the package as a user gets it (test/consumer). Slow (npm pack, npm install).
export default defineConfig({
  test: {
    include: ["test/consumer/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-consumer.json" }
  }
})
