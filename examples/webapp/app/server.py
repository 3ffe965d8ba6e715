"""A small web application: a greeting page and a health endpoint, served by Flask's
development server (bound to all interfaces so the container's port reaches it)."""

import os

from flask import Flask, jsonify

app = Flask(__name__)
GREETING = os.environ.get("GREETING", "Hello")


@app.get("/")
def index():
    return f"{GREETING} from webapp\n"


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
