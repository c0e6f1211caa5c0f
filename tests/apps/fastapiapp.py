"""A FastAPI app for test_asgi.py: path and query parameters, a JSON body, validation
errors, background tasks and startup state."""
from fastapi import BackgroundTasks, FastAPI
from pydantic import BaseModel

app = FastAPI()
STATE = {"started": False, "tasks": []}


class Item(BaseModel):
    name: str
    price: float


@app.on_event("startup")
async def startup():
    STATE["started"] = True


@app.get("/")
async def root():
    return {"message": "Hello, world!", "started": STATE["started"]}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item, tasks: BackgroundTasks):
    tasks.add_task(STATE["tasks"].append, item.name)
    return {"name": item.name, "double": item.price * 2}


@app.get("/tasks")
async def tasks_done():
    return STATE["tasks"]
