# Bench app: each request sleeps 50 ms (a slow backend), then answers as rack_hello.ru.
HEADERS = {"Content-Type" => "text/plain", "Content-Length" => "13"}.freeze
run ->(env) { sleep 0.05; [200, HEADERS.dup, ["Hello, World!"]] }
