# A minimal Rails 6.1 app (Debian's ruby-railties and ruby-actionpack) for
# test_ruby.py: one controller, no database, production settings. Under
# Rack::Lint.
#
# /               hello             /hello/:name   a route parameter
# POST /form      a + b from an urlencoded form
# POST /upload    a multipart file: its name, size and MD5
# /stream         three parts from an Enumerator body
# /file           this file through send_file
# /etag           an ETag, so If-None-Match gets a 304
ENV["RAILS_ENV"] ||= "production"
require "digest"
require "logger"
require "action_controller/railtie"

class RailsApp < Rails::Application
  config.root = __dir__
  config.eager_load = false
  config.secret_key_base = "qilin-test-" + "0" * 64
  config.logger = Logger.new(nil)
  config.hosts.clear
  config.action_controller.allow_forgery_protection = false
  config.active_support.deprecation = :silence

  routes.append do
    root "pages#hello"
    get "/hello/:name", to: "pages#name"
    post "/form", to: "pages#form"
    post "/upload", to: "pages#upload"
    get "/stream", to: "pages#stream"
    get "/file", to: "pages#file"
    get "/etag", to: "pages#etag"
  end
end

class PagesController < ActionController::Base
  def hello
    render plain: "Hello from Rails"
  end

  def name
    render plain: "Hello, #{params[:name]}!"
  end

  def form
    render plain: "#{params[:a]}+#{params[:b]}"
  end

  def upload
    f = params[:file]
    render plain: "#{f.original_filename} #{f.size} #{Digest::MD5.file(f.path).hexdigest}"
  end

  def stream
    response.headers["Content-Type"] = "text/plain"
    self.response_body = Enumerator.new { |y| 3.times { |i| y << "part#{i}\n" } }
  end

  def file
    send_file __FILE__, type: "text/plain"
  end

  def etag
    render plain: "tagged" if stale?(etag: "v1", public: true)
  end
end

RailsApp.initialize!
use Rack::Lint
run RailsApp
