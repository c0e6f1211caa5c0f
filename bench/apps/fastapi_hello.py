"""Bench app: FastAPI's hello world (python3-fastapi 0.92 from Debian), JSON body."""
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def hello():
    return {"message": "Hello, world!"}
