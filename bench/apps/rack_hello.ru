# Bench app: hello.py's 13-byte body as a Rack app (no middleware).
BODY = "Hello, World!".freeze
HEADERS = {"Content-Type" => "text/plain", "Content-Length" => "13"}.freeze
run ->(env) { [200, HEADERS.dup, [BODY]] }
