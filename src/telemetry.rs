//! Logging: `RUST_LOG` filters (default `info`); `LOG_FORMAT` picks lines for people or JSON
//! lines. A request's lines carry its request id through the span that middleware.rs opens.

use std::fmt::Write as _;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::callsite::Callsite;
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Crates that could print a header or a body at their most verbose levels are held at
/// `info` whatever `RUST_LOG` asks: a cookie or a token must not reach the log.
const QUIET: [&str; 4] = ["actix_http=info", "h2=info", "hyper=info", "reqwest=info"];

pub fn init(format: LogFormat) {
    let filter = QUIET.iter().filter_map(|d| d.parse().ok()).fold(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        EnvFilter::add_directive,
    );
    // Colours only for a person at a terminal, not for a file or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    // Fails only if a subscriber is already set (tests), which is fine.
    let _ = match format {
        LogFormat::Text => builder.event_format(Relevel(format::format())).try_init(),
        // Every span of the line is listed, so the request's id is there even in a line
        // from a nested span (argon2's, say).
        LogFormat::Json => builder
            .json()
            .event_format(Relevel(
                format::format()
                    .json()
                    .with_current_span(false)
                    .with_span_list(true),
            ))
            .try_init(),
    };
}

/// Where actix-http reports a connection it gave up on.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

/// actix-http logs every connection it gives up on at ERROR ("stream error: ..."): a head it
/// cannot parse (a URI over 64 KiB, a head over 128 KiB, a broken header line), a client that
/// stalls or resets. Each is the client's doing, answered (400, 408, 431) before any code of
/// ours runs, so the line is written at WARN: an anonymous client must not be able to page
/// whoever watches for errors. Every other line keeps its level.
struct Relevel<F>(F);

/// The message of an actix-http "stream error" line, or `None` for any other event.
fn stream_error(event: &Event<'_>) -> Option<String> {
    let meta = event.metadata();
    if *meta.level() != Level::ERROR || meta.target() != DISPATCHER {
        return None;
    }
    let message = message_of(event);
    message.starts_with("stream error").then_some(message)
}

fn message_of(event: &Event<'_>) -> String {
    struct Message(String);
    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, "{value:?}");
            }
        }
    }
    let mut message = Message(String::new());
    event.record(&mut message);
    message.0
}

impl<S, N, F> FormatEvent<S, N> for Relevel<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
    FormattedFields<N>: 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(message) = stream_error(event) else {
            return self.0.format_event(ctx, writer, event);
        };
        let fields = REFUSED.fields();
        let Some(field) = fields.field("message") else {
            return self.0.format_event(ctx, writer, event);
        };
        let values = [(&field, Some(&message as &dyn tracing::Value))];
        let values = fields.value_set(&values);
        self.0
            .format_event(ctx, writer, &Event::new(&REFUSED, &values))
    }
}

/// The callsite of the WARN line that stands for actix-http's ERROR one. It is only ever
/// handed to the formatter, never dispatched, so its interest is never asked.
struct RefusedCallsite;

static REFUSED_CALLSITE: RefusedCallsite = RefusedCallsite;

static REFUSED: Metadata<'static> = tracing_core::metadata! {
    name: "refused connection",
    target: DISPATCHER,
    level: Level::WARN,
    fields: &["message"],
    callsite: &REFUSED_CALLSITE,
    kind: Kind::EVENT,
};

impl Callsite for RefusedCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &REFUSED
    }
}
