"""``cnnkit serve``: a local web page and a JSON API over trained runs (FastAPI on uvicorn, extra ``serve``)."""
