from django.urls import path

from djangoproj import views

urlpatterns = [
    path("", views.index),
    path("json/", views.json_view),
    path("form/", views.form),
    path("abs/", views.absolute),
    path("async/", views.async_view),
]
