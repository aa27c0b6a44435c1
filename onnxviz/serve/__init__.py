"""`onnxviz serve`: a local web explorer and explanation service (FastAPI on uvicorn; extra onnxviz[serve]). The app
(app.py) checks a random token on every API call (security.py) and runs explanations as cancellable jobs on a
bounded pool of worker threads that share the loaded models (jobs.py)."""
