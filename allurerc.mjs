// Allure 3 configuration for trustgate's HTML report (built by scripts/build_report.sh).
// One self-contained index.html (singleFile), so the report opens from disk or a CI artefact
// without a web server; the tree is dimension > scenario > variant, the labels the gate sets.
import { defineConfig } from "allure";

export default defineConfig({
  name: "trustgate: compressed vs dense trust report",
  output: "./allure-report",
  plugins: {
    awesome: {
      options: {
        reportName: "trustgate: compressed vs dense trust report",
        singleFile: true,
        groupBy: ["epic", "feature", "story"],
        theme: "light",
      },
    },
  },
});
