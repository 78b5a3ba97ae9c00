"""Export the settled labels: CheXpert-style CSV, JSONL or Parquet."""
