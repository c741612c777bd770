"""`model` is not an nn.Module; `settings` is a plain dict."""
model = 42
settings = {"width": 8}


def not_a_factory():
    return "a string"
