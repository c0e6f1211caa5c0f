import asyncio

from django.http import HttpResponse, JsonResponse


def index(request):
    return HttpResponse("django ok", content_type="text/plain")


def json_view(request):
    return JsonResponse({"path": request.path, "q": request.GET.get("q"),
                         "method": request.method})


def form(request):
    if request.method != "POST":
        return HttpResponse("POST only", status=405, content_type="text/plain")
    return HttpResponse("name=%s" % request.POST.get("name", ""), content_type="text/plain")


def absolute(request):
    return HttpResponse(request.build_absolute_uri(), content_type="text/plain")


async def async_view(request):
    """An async view: under ASGI it runs on the worker's event loop."""
    await asyncio.sleep(0.01)
    return JsonResponse({"async": True, "path": request.path, "q": request.GET.get("q")})
