"""A Starlette app for test_asgi.py: routing, JSON, streaming, a form upload, background
tasks and lifespan state."""
import contextlib

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

DONE = []


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hi from lifespan"}


async def home(request):
    return PlainTextResponse(request.state.greeting)


async def item(request):
    return JSONResponse({"id": int(request.path_params["id"]), "q": request.query_params.get("q")})


async def stream(request):
    async def gen():
        for i in range(3):
            yield b"part%d;" % i
    return StreamingResponse(gen(), media_type="text/plain")


async def upload(request):
    form = await request.form()
    f = form["file"]
    data = await f.read()
    return JSONResponse({"name": f.filename, "size": len(data), "field": form.get("field")})


async def later(request):
    return PlainTextResponse("queued", background=BackgroundTask(DONE.append, "done"))


async def done(request):
    return PlainTextResponse(",".join(DONE))


app = Starlette(routes=[Route("/", home), Route("/items/{id:int}", item), Route("/stream", stream),
                        Route("/upload", upload, methods=["POST"]), Route("/later", later),
                        Route("/done", done)], lifespan=lifespan)
