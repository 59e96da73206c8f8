"""The HTTP entry point: a FastAPI app over the application and the reads."""
