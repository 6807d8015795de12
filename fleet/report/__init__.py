"""Report model and renderers: json, csv, md, html, PolicyReport, JUnit, Prometheus."""
