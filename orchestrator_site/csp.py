"""A Content-Security-Policy on every HTML page: scripts, styles, images and connections from this
origin only, no framing, forms post here only. The dashboard has no inline script or style, so it
gets the strict policy; the admin, the browsable API and Swagger UI carry a few inline <style>
blocks of their own, so their pages also allow inline styles (never inline scripts)."""

STRICT = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
INLINE_STYLES = STRICT.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
THIRD_PARTY_PAGES = ("/admin/", "/api/", "/api-auth/", "/docs")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response and response.get("Content-Type", "").startswith(
            "text/html"
        ):
            third_party = request.path.startswith(THIRD_PARTY_PAGES)
            response["Content-Security-Policy"] = INLINE_STYLES if third_party else STRICT
        return response
