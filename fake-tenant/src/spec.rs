//! Validation of request and response bodies against the vendored structural API descriptions
//! in `specs/` (Graph OpenAPI 3 subset, ARM Swagger 2).
