//! The OpenAPI 3 document, generated from the route annotations of every capability.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Scheduler, meetings feed, chat, webhook broker and wage portal. \
                       Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "sign-up, tokens, the calling account"),
        (name = "broker", description = "topics, subscribers, ordered signed webhook delivery, delivery log, replay"),
        (name = "chat", description = "expiring messages; also served at the root: /chat, /chat/{id}, /chats/{username}"),
        (name = "scheduler", description = "users' calendars: events, free/busy, iCal feeds (GET /ical/{token}.ics)"),
        (name = "meetings", description = "booking webhooks in (POST /webhooks/calendly), one live state per meeting out"),
        (name = "wages", description = "LCA wage records, box-and-whisker statistics against BLS OEWS market percentiles, imports"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("sb_…").build()),
        );
    }
}
