//! The second after a token expires. A token answers 200 until the instant it stops
//! verifying, `token_expired` from then on, and never `session_revoked`: an SPA refreshes on
//! the first and logs the user out on the second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::RequestBuilder;
use serde_json::Value;

use crate::helpers::*;

/// Well under a second, so that the window around `exp` is sampled finely.
const STEP: Duration = Duration::from_millis(50);
/// The most a test allows: refused as expired no later than this after `exp` (it is at `exp`).
const LATEST_STOP_SECS: f64 = 1.0;
/// How long after `exp` the polling goes on.
const POLL_PAST_EXP_SECS: f64 = 1.6;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// One request, with its send and receive times in seconds relative to the token's `exp`.
#[derive(Debug)]
struct Poll {
    sent: f64,
    received: f64,
    status: u16,
    code: String,
}

/// Sends `request()` every `STEP` from now until `POLL_PAST_EXP_SECS` after `exp`.
async fn poll_across(exp: i64, request: impl Fn() -> RequestBuilder) -> Vec<Poll> {
    let exp = exp as f64;
    let mut polls = Vec::new();
    loop {
        let sent = unix_now() - exp;
        if sent > POLL_PAST_EXP_SECS {
            return polls;
        }
        let response = request().send().await.expect("request");
        let received = unix_now() - exp;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        polls.push(Poll {
            sent,
            received,
            status,
            code: body["code"].as_str().unwrap_or_default().to_owned(),
        });
        tokio::time::sleep(STEP).await;
    }
}

/// 200 before the stop instant, `token_expired` from it on, that instant between `exp` and
/// one second after it, and nothing else.
fn assert_expires_cleanly(what: &str, polls: &[Poll]) {
    let table = || {
        polls
            .iter()
            .map(|p| {
                format!(
                    "{:+.3}s..{:+.3}s {} {}",
                    p.sent, p.received, p.status, p.code
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let first_expired = polls.iter().position(|p| p.status != 200);
    let Some(first_expired) = first_expired else {
        panic!("{what}: never expired\n{}", table());
    };
    if let Some(last_ok) = first_expired.checked_sub(1) {
        // Shown with --nocapture: where the stop instant fell in this run.
        eprintln!(
            "{what}: last 200 received {:+.3}s, first refusal sent {:+.3}s after exp",
            polls[last_ok].received, polls[first_expired].sent
        );
    }
    for (i, poll) in polls.iter().enumerate() {
        if i < first_expired {
            assert!(
                poll.sent < LATEST_STOP_SECS,
                "{what}: still verifying over a second after exp\n{}",
                table()
            );
        } else {
            assert_eq!(
                (poll.status, poll.code.as_str()),
                (401, "token_expired"),
                "{what}: after the first refusal, only token_expired\n{}",
                table()
            );
            assert!(
                poll.received >= 0.0,
                "{what}: refused as expired before its exp\n{}",
                table()
            );
        }
    }
    assert!(
        polls[..first_expired].iter().any(|p| p.sent > -0.3),
        "{what}: no 200 sampled just before exp (machine too busy?)\n{}",
        table()
    );
}

fn exp_of(token: &str) -> i64 {
    claims_of(token)["exp"].as_i64().expect("exp")
}

#[tokio::test]
async fn an_access_token_answers_200_then_token_expired_never_session_revoked() {
    let app = spawn_app_with(&[("ACCESS_TOKEN_EXPIRED_IN", "2s")]).await;
    let email = app.register_user().await;
    let response = app.login(&email, PASSWORD).await;
    let session = session_from(&response);
    let exp = exp_of(&session.access);
    let me = app.url("/api/users/me");

    let (bearer, cookie) = tokio::join!(
        poll_across(exp, || plain_client().get(&me).bearer_auth(&session.access)),
        poll_across(exp, || plain_client()
            .get(&me)
            .header("cookie", format!("access_token={}", session.access))),
    );

    assert_expires_cleanly("access token as Bearer", &bearer);
    assert_expires_cleanly("access token as cookie", &cookie);
}

#[tokio::test]
async fn a_refresh_token_answers_200_then_token_expired_never_session_revoked() {
    // The grace window outlasts the polling, so every repeat is another tab's, answered 200.
    let app = spawn_app_with(&[
        ("ACCESS_TOKEN_EXPIRED_IN", "1s"),
        ("REFRESH_TOKEN_EXPIRED_IN", "3s"),
        ("REFRESH_REUSE_GRACE", "30s"),
    ])
    .await;
    let email = app.register_user().await;
    let response = app.login(&email, PASSWORD).await;
    let session = session_from(&response);
    let exp = exp_of(&session.refresh);
    let refresh = app.url("/api/auth/refresh");

    let (bearer, cookie) = tokio::join!(
        poll_across(exp, || plain_client()
            .post(&refresh)
            .bearer_auth(&session.refresh)),
        poll_across(exp, || plain_client()
            .post(&refresh)
            .header("cookie", format!("refresh_token={}", session.refresh))),
    );

    assert_expires_cleanly("refresh token as Bearer", &bearer);
    assert_expires_cleanly("refresh token as cookie", &cookie);
}
