"""Dataset engine: encrypted storage, ingestion checks, profiling, personal-data detection, preparation."""
