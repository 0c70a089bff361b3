//! Provider logs: `tracing` events written to stderr as go-plugin/hclog JSON lines.
//!
//! Terraform runs the provider through go-plugin, which reads the child's stderr line by line.
//! A line that parses as JSON with `@level`, `@message` and `@timestamp` keys is re-logged by
//! Terraform at that level (so `TF_LOG_PROVIDER=INFO` filters it), with every other key kept as
//! a structured field; anything else is logged verbatim at DEBUG. go-plugin parses `@timestamp`
//! with the layout `2006-01-02T15:04:05.000000Z07:00`, so exactly six fractional digits are
//! written — a line with a different timestamp shape is rejected and loses its level.
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG`, read the way Terraform reads them:
//! `TRACE`/`DEBUG`/`INFO`/`WARN`/`ERROR`, `JSON` meaning TRACE, `OFF` silencing, and any other
//! non-empty value meaning TRACE. Unset, only warnings and errors are written (Terraform
//! discards them anyway unless its own logging is on).
//!
//! Redaction happens here, in the one place every line passes through, so no code path can
//! forget it: fields whose *name* looks secret are replaced by `[redacted]`, and every value
//! registered with [`register_secret`] is masked wherever it appears in the message or any field
//! value. JWTs (access tokens, client assertions, OIDC tokens) are masked by shape as a safety net
//! for tokens nobody registered.

use std::fmt;
use std::io::Write;
use std::sync::RwLock;

use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// What replaces a secret in a log line.
pub const REDACTED: &str = "[redacted]";

/// The `@module` go-plugin shows next to each line.
const MODULE: &str = "provider.terraform-provider-breakglass";

/// Installs the stderr logger for the provider process. Calling it again is harmless (the
/// first subscriber stays), which keeps tests and `main` simple.
pub fn init() {
    let level = level_from_env(|name| std::env::var(name).ok());
    let layer = HclogLayer::new(std::io::stderr).with_filter(verbosity(level));
    let subscriber = tracing_subscriber::registry().with(layer);
    let _ = tracing::subscriber::set_global_default(subscriber);
    install_panic_hook();
}

/// Replaces Rust's default panic hook, which prints the panic message verbatim to stderr —
/// and Terraform copies the provider's stderr into its log. A message may quote a value the
/// provider was handed (a secret, say), so panics are written as one hclog error line through
/// the same redaction as every other line. (The protocol layer turns the panic itself into an
/// error diagnostic and keeps serving.)
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let line = panic_line(&message, location.as_deref());
        let _ = std::io::stderr().write_all(line.as_bytes());
    }));
}

/// The hclog line for a panic: error level, the message redacted, where it happened.
pub fn panic_line(message: &str, location: Option<&str>) -> String {
    let mut line = Map::new();
    line.insert("@level".into(), Json::from("error"));
    line.insert(
        "@message".into(),
        Json::from(format!("the provider panicked: {}", redact(message))),
    );
    line.insert("@module".into(), Json::from(MODULE));
    line.insert("@timestamp".into(), Json::from(timestamp()));
    if let Some(location) = location {
        line.insert("location".into(), Json::from(location));
    }
    let mut text = Json::Object(line).to_string();
    text.push('\n');
    text
}

/// The verbosity Terraform asked for. `lookup` reads an environment variable (injected so
/// tests need not mutate the process environment).
pub fn level_from_env(lookup: impl Fn(&str) -> Option<String>) -> LevelFilter {
    let chosen = ["TF_LOG_PROVIDER", "TF_LOG"]
        .into_iter()
        .filter_map(&lookup)
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty());
    match chosen {
        None => LevelFilter::WARN,
        Some(v) => match v.to_ascii_uppercase().as_str() {
            "OFF" => LevelFilter::OFF,
            "ERROR" => LevelFilter::ERROR,
            "WARN" => LevelFilter::WARN,
            "INFO" => LevelFilter::INFO,
            "DEBUG" => LevelFilter::DEBUG,
            // "TRACE", "JSON", and — as in Terraform — any unrecognised value.
            _ => LevelFilter::TRACE,
        },
    }
}

/// Our own events at `level`; dependencies (hyper, h2, tonic, rustls, reqwest) at most at INFO,
/// because at DEBUG they log every HTTP/2 frame and would bury the provider's lines.
pub fn verbosity(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(level.min(LevelFilter::INFO))
        .with_target("breakglass", level)
        .with_target("terraform_provider_breakglass", level)
}

// ---------------------------------------------------------------------------------------------
// Secret registry

/// Secrets known at runtime, longest first so a secret containing another is masked whole.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Makes `secret` unloggable from now on: every later log line has each occurrence replaced by
/// `[redacted]`. Its form-urlencoded spelling is registered too, because token requests carry
/// client secrets and assertions in `application/x-www-form-urlencoded` bodies.
pub fn register_secret(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for s in [secret.to_owned(), encoded] {
        if !secrets.contains(&s) {
            secrets.push(s);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret and every JWT-shaped token masked.
pub fn redact(text: &str) -> String {
    let mut out = mask_jwts(text);
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    out
}

/// Whether a field called `name` carries a credential, whatever its value looks like.
/// Matching on fragments catches `client_secret`, `refresh_token`, `access_token`,
/// `clientAssertion`, `Authorization` and friends in any casing or separator style.
pub fn is_secret_field(name: &str) -> bool {
    const FRAGMENTS: [&str; 9] = [
        "password",
        "passwd",
        "secret",
        "token",
        "assertion",
        "authorization",
        "credential",
        "cookie",
        "privatekey",
    ];
    let normalized: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    FRAGMENTS.iter().any(|f| normalized.contains(f))
}

/// Replaces anything shaped like a JWT (`eyJ<header>.<payload>.<signature>`, base64url parts).
/// Entra access tokens, client assertions and federated OIDC tokens all have that shape.
fn mask_jwts(text: &str) -> String {
    fn is_b64url(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    let mut i = 0;
    while let Some(offset) = text[i..].find("eyJ") {
        let start = i + offset;
        // A token starts at a word boundary; `xeyJ...` is not one.
        if start > 0 && is_b64url(bytes[start - 1]) {
            i = start + 3;
            continue;
        }
        let mut end = start;
        let mut dots = 0;
        let mut segment_len = 0;
        while end < bytes.len() {
            let b = bytes[end];
            if is_b64url(b) {
                segment_len += 1;
            } else if b == b'.' && segment_len > 0 && dots < 2 {
                dots += 1;
                segment_len = 0;
            } else {
                break;
            }
            end += 1;
        }
        if dots == 2 {
            out.push_str(&text[copied_up_to..start]);
            out.push_str(REDACTED);
            copied_up_to = end;
        }
        i = end.max(start + 3);
    }
    out.push_str(&text[copied_up_to..]);
    out
}

// ---------------------------------------------------------------------------------------------
// The layer

/// A `tracing` layer writing one hclog JSON object per event.
pub struct HclogLayer<W> {
    make_writer: W,
}

impl<W> HclogLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    pub fn new(make_writer: W) -> Self {
        HclogLayer { make_writer }
    }
}

/// Fields recorded on a span, stored in the span's extensions and copied onto every event
/// inside it (so `#[instrument]`ed resource calls tag their lines with e.g. the resource type).
struct SpanFields(Map<String, Json>);

impl<S, W> Layer<S> for HclogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = FieldCollector::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.fields));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = FieldCollector::default();
        values.record(&mut fields);
        let mut ext = span.extensions_mut();
        match ext.get_mut::<SpanFields>() {
            Some(existing) => existing.0.extend(fields.fields),
            None => ext.insert(SpanFields(fields.fields)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "@level".into(),
            Json::from(hclog_level(event.metadata().level())),
        );
        line.insert("@module".into(), Json::from(MODULE));
        line.insert("@timestamp".into(), Json::from(timestamp()));

        // Outermost span first, so inner spans and the event itself win on name clashes.
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.0.clone());
                }
            }
        }
        let mut fields = FieldCollector::default();
        event.record(&mut fields);
        line.extend(fields.fields);

        let message = fields.message.unwrap_or_default();
        line.insert("@message".into(), Json::from(message));

        let mut text = Json::Object(line).to_string();
        text.push('\n');
        // One write per line: go-plugin splits stderr on newlines, and concurrent events must
        // not interleave inside a line.
        let _ = self.make_writer.make_writer().write_all(text.as_bytes());
    }
}

fn hclog_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

fn timestamp() -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_default()
}

/// Collects an event's or span's fields as JSON, redacting on the way in so an unredacted
/// value is never stored anywhere.
#[derive(Default)]
struct FieldCollector {
    message: Option<String>,
    fields: Map<String, Json>,
}

impl FieldCollector {
    fn put(&mut self, field: &Field, value: Json) {
        let name = field.name();
        if name == "message" {
            let text = match value {
                Json::String(s) => s,
                other => other.to_string(),
            };
            self.message = Some(redact(&text));
            return;
        }
        let value = if is_secret_field(name) {
            Json::from(REDACTED)
        } else {
            match value {
                Json::String(s) => Json::String(redact(&s)),
                other => other,
            }
        };
        // hclog reserves `@`-prefixed keys; a field must not be able to forge the level.
        let key = if name.starts_with('@') {
            format!("field{name}")
        } else {
            name.to_owned()
        };
        self.fields.insert(key, value);
    }
}

impl Visit for FieldCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Json::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Json::String(value.to_owned()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Json::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Json::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Json::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Json::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Json::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Captures what the layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<Map<String, Json>> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(
                    |l| match serde_json::from_str(l).expect("each line is JSON") {
                        Json::Object(m) => m,
                        other => panic!("not an object: {other}"),
                    },
                )
                .collect()
        }
        fn raw(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn capture(level: LevelFilter, f: impl FnOnce()) -> Captured {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(HclogLayer::new(captured.clone()).with_filter(level));
        tracing::subscriber::with_default(subscriber, f);
        captured
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn panic_lines_are_hclog_errors_with_secrets_masked() {
        let secret = "panic-hook-secret-3f9a1c";
        register_secret(secret);
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let line = panic_line(
            &format!("index out of range in {secret:?} near {jwt}"),
            Some("src/resources/x.rs:10:5"),
        );
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let parsed: Map<String, Json> = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["@level"], "error");
        assert_eq!(parsed["location"], "src/resources/x.rs:10:5");
        let message = parsed["@message"].as_str().unwrap();
        assert!(message.starts_with("the provider panicked: index out of range"));
        assert!(!line.contains(secret) && !line.contains(jwt), "{line}");
        assert!(message.contains(REDACTED));
    }

    #[test]
    fn lines_have_the_hclog_shape_go_plugin_parses() {
        let out = capture(LevelFilter::TRACE, || {
            tracing::info!(tenant_id = "46810bcd", attempt = 2, "configured provider");
        });
        let lines = out.lines();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["@level"], "info");
        assert_eq!(line["@message"], "configured provider");
        assert_eq!(line["@module"], "provider.terraform-provider-breakglass");
        assert_eq!(line["tenant_id"], "46810bcd");
        assert_eq!(line["attempt"], 2);
        // 2006-01-02T15:04:05.000000Z07:00 — six fractional digits, then the zone.
        let ts = line["@timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), "2006-01-02T15:04:05.000000Z".len(), "{ts}");
        assert_eq!(&ts[10..11], "T");
        assert_eq!(&ts[19..20], ".");
        assert!(ts[20..26].bytes().all(|b| b.is_ascii_digit()), "{ts}");
        assert!(ts.ends_with('Z'));
        assert!(out.raw().ends_with('\n'));
    }

    #[test]
    fn every_level_maps_to_an_hclog_level_name() {
        let out = capture(LevelFilter::TRACE, || {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let levels: Vec<String> = out
            .lines()
            .iter()
            .map(|l| l["@level"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(levels, ["trace", "debug", "info", "warn", "error"]);
    }

    #[test]
    fn the_filter_drops_events_below_the_level() {
        let out = capture(LevelFilter::WARN, || {
            tracing::debug!("hidden");
            tracing::warn!("shown");
        });
        let lines = out.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["@message"], "shown");
    }

    #[test]
    fn dependencies_are_capped_at_info() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(HclogLayer::new(captured.clone()).with_filter(verbosity(LevelFilter::TRACE)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "h2::codec", "frame");
            tracing::info!(target: "hyper::server", "listening");
            tracing::trace!(target: "breakglass::azure::http", "request");
            tracing::debug!("from this module");
        });
        let messages: Vec<String> = captured
            .lines()
            .iter()
            .map(|l| l["@message"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(messages, ["listening", "request", "from this module"]);
    }

    #[test]
    fn level_follows_tf_log_provider_then_tf_log() {
        assert_eq!(level_from_env(env(&[])), LevelFilter::WARN);
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "debug")])),
            LevelFilter::DEBUG
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "TRACE"), ("TF_LOG_PROVIDER", "ERROR")])),
            LevelFilter::ERROR
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "INFO"), ("TF_LOG_PROVIDER", "")])),
            LevelFilter::INFO,
            "an empty TF_LOG_PROVIDER does not override TF_LOG"
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "JSON")])),
            LevelFilter::TRACE
        );
        assert_eq!(level_from_env(env(&[("TF_LOG", "off")])), LevelFilter::OFF);
        assert_eq!(
            level_from_env(env(&[("TF_LOG_PROVIDER", "warn")])),
            LevelFilter::WARN
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "verbose-please")])),
            LevelFilter::TRACE,
            "Terraform treats an unknown level as TRACE"
        );
    }

    #[test]
    fn secret_named_fields_are_redacted_whatever_their_value() {
        let out = capture(LevelFilter::TRACE, || {
            tracing::debug!(
                client_secret = "s3cr3t-value",
                refresh_token = "rt-value",
                access_token = "at-value",
                Authorization = "Bearer abc",
                client_assertion = "assertion-value",
                password = "hunter2",
                user_principal_name = "bg1@contoso.example",
                "token request"
            );
        });
        let raw = out.raw();
        for leaked in [
            "s3cr3t-value",
            "rt-value",
            "at-value",
            "Bearer abc",
            "assertion-value",
            "hunter2",
        ] {
            assert!(!raw.contains(leaked), "{leaked} leaked: {raw}");
        }
        let line = &out.lines()[0];
        assert_eq!(line["client_secret"], REDACTED);
        assert_eq!(line["Authorization"], REDACTED);
        assert_eq!(line["user_principal_name"], "bg1@contoso.example");
    }

    #[test]
    fn registered_secrets_are_masked_in_messages_fields_and_spans() {
        let secret = "Rg~unit-test-only-registered-secret-7f3a";
        register_secret(secret);
        let out = capture(LevelFilter::TRACE, || {
            let span = tracing::info_span!("configure", body = %format!("x={secret}"));
            let _guard = span.enter();
            tracing::warn!(detail = %format!("got {secret} back"), "sent {secret} to login");
            tracing::warn!(
                form = %format!("client_secret={}", "Rg~unit-test-only-registered-secret-7f3a".replace('~', "%7E")),
                "form encoded"
            );
        });
        let raw = out.raw();
        assert!(!raw.contains(secret), "secret leaked: {raw}");
        assert!(
            !raw.contains("Rg%7Eunit-test-only-registered-secret-7f3a"),
            "urlencoded secret leaked: {raw}"
        );
        // The registry is process-wide and other tests add to it, so check the property
        // (gone, marked) rather than the exact text.
        let lines = out.lines();
        for key in ["@message", "detail", "body"] {
            let text = lines[0][key].as_str().unwrap();
            assert!(
                text.contains(REDACTED) && !text.contains(secret),
                "{key}: {text}"
            );
        }
    }

    #[test]
    fn jwt_shaped_tokens_are_masked_without_registration() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl-_x";
        assert_eq!(redact(&format!("got {jwt}, done")), "got [redacted], done");
        // Not tokens: no dots, or glued to a preceding word.
        assert_eq!(redact("eyJonly"), "eyJonly");
        assert_eq!(redact("keyJa.b.c"), "keyJa.b.c");
        assert_eq!(redact(jwt), REDACTED);
    }

    #[test]
    fn secret_field_names_are_recognised_in_any_style() {
        for name in [
            "client_secret",
            "clientSecret",
            "refresh_token",
            "access_token",
            "client_assertion",
            "Authorization",
            "client_certificate_password",
            "oidc_request_token",
            "private_key",
        ] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in ["tenant_id", "user_principal_name", "message", "status"] {
            assert!(!is_secret_field(name), "{name}");
        }
    }

    #[test]
    fn fields_cannot_forge_hclog_keys() {
        let out = capture(LevelFilter::TRACE, || {
            tracing::info!("@level" = "error", "hello");
        });
        let line = &out.lines()[0];
        assert_eq!(line["@level"], "info");
        assert_eq!(line["field@level"], "error");
    }
}
