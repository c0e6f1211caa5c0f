# A Rack app with nothing around it (test_ruby.py), so the server's own
# checks are what answers: / is an Array body (it gets a Content-Length),
# /badheader a header name no HTTP allows, /badstatus a status out of range.
run ->(env) {
  case env["PATH_INFO"]
  when "/badheader" then [200, {"Bad Name" => "x"}, ["never sent"]]
  when "/badstatus" then [42, {}, ["never sent"]]
  else [200, {"Content-Type" => "text/plain"}, ["Hello, ", "World!"]]
  end
}
