"""The API documentation in the browser: docs/openapi.yaml rendered by Swagger UI (from the flask-swagger-ui package,
no CDN), published by the gateway at `/docs/` without a token; "Try it out" calls the gateway with the token the
reader gives the Authorize dialog."""
