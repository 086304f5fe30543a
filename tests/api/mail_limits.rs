//! What forgot-password and resend give away, and what they cost: the same answer, at the
//! same speed, for every address; at most three link mails per address; every request, and
//! every dead link, counted against the client's IP like a failed login.

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::Value;

use crate::helpers::*;

/// The status, the body's bytes and the cache header of an answer.
async fn answer(response: Response) -> (u16, Option<String>, Vec<u8>) {
    let status = response.status().as_u16();
    let cache = header(&response, "cache-control");
    let bytes = response.bytes().await.expect("body").to_vec();
    (status, cache, bytes)
}

#[tokio::test]
async fn forgot_password_and_resend_answer_alike_for_every_address() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let (verified, token) = app.register_for_link(&smtp).await;
    assert_eq!(app.verify_email(&token).await.status(), 200);
    let unverified = app.register_user().await;
    let addresses = [
        verified.clone(),
        verified.to_uppercase(),
        unverified,
        unique_email(),
    ];

    for route in ["/api/auth/forgot-password", "/api/auth/verify-email/resend"] {
        let mut answers = Vec::new();
        for email in &addresses {
            let body = serde_json::json!({"email": email});
            answers.push(answer(post_at(&app.address, route, &body).await).await);
        }
        let first = &answers[0];
        assert_eq!(first.0, 202, "{route}");
        assert_eq!(first.1.as_deref(), Some("no-store"), "{route}");
        let body: Value = serde_json::from_slice(&first.2).expect("JSON");
        assert_eq!(body["status"], "success", "{route}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        for (email, other) in addresses.iter().zip(&answers) {
            assert_eq!(other, first, "{route} for {email}");
        }
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Requests for a known and an unknown address, alternating, `rounds` times each; returns the
/// medians (known, unknown).
async fn medians(app: &TestApp, route: &str, known: &str, rounds: usize) -> (Duration, Duration) {
    let client = plain_client();
    let (mut for_known, mut for_unknown) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let unknown = unique_email();
        let order = if round % 2 == 0 {
            [(known, true), (unknown.as_str(), false)]
        } else {
            [(unknown.as_str(), false), (known, true)]
        };
        for (email, is_known) in order {
            let request = client
                .post(app.url(route))
                .json(&serde_json::json!({"email": email}));
            let started = Instant::now();
            let response = request.send().await.expect("request");
            let status = response.status();
            let _ = response.bytes().await;
            let took = started.elapsed();
            assert_eq!(status, 202, "{route}");
            if is_known {
                for_known.push(took);
            } else {
                for_unknown.push(took);
            }
        }
    }
    (median(for_known), median(for_unknown))
}

/// The contract says "within a few milliseconds at the median": the lookup and the sending
/// happen off the request path. Measured here the medians are well under a millisecond
/// apart. The bound is 25 ms, far above that, so that a loaded 2-core runner (the whole suite
/// runs in parallel) does not fail it, while a request path that hashed a password or talked
/// to the SMTP server for known addresses only (17 ms and up) would still show.
#[tokio::test]
async fn forgot_password_and_resend_take_as_long_for_known_and_unknown_addresses() {
    let (app, smtp) = spawn_mail_app(&[("LOGIN_ATTEMPTS_IP_LIMIT", "1000")]).await;
    let known = app.register_user().await;
    smtp.wait_for(&known, "verify_email").await;
    // Warm up connections and caches on both paths.
    medians(&app, "/api/auth/forgot-password", &known, 3).await;

    for route in ["/api/auth/forgot-password", "/api/auth/verify-email/resend"] {
        let (known_median, unknown_median) = medians(&app, route, &known, 30).await;
        let gap = known_median.abs_diff(unknown_median);
        println!("{route}: median {known_median:?} known, {unknown_median:?} unknown");
        assert!(
            gap < Duration::from_millis(25),
            "{route}: known {known_median:?}, unknown {unknown_median:?}"
        );
    }
}

#[tokio::test]
async fn at_most_three_link_mails_per_address_and_every_request_answers_202() {
    let (app, smtp) = spawn_mail_app(&[]).await;
    let email = app.register_user().await;
    smtp.wait_for(&email, "verify_email").await;

    // One at a time, each worked on before the next is asked: three link mails, then none.
    let limited = async || {
        let text = app.metrics().await;
        let of = |kind| {
            let labels = [("kind", kind), ("outcome", "limited")];
            metric(&text, "mail_sent_total", &labels).unwrap_or(0.0)
        };
        of("reset_password") + of("verify_email")
    };
    let links = || smtp.count(&email, "reset_password") + smtp.count(&email, "verify_email") - 1;
    let mut answers = Vec::new();
    for asked in 1..=5 {
        let response = if asked < 5 {
            app.forgot_password(&email).await
        } else {
            // Resend shares the limit: no fourth link mail of any purpose.
            app.resend_verification(&email).await
        };
        answers.push(answer(response).await);
        let deadline = std::time::Instant::now() + MAIL_WAIT;
        while links() + (limited().await as usize) < asked {
            assert!(std::time::Instant::now() < deadline, "{:?}", smtp.summary());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(answers.iter().all(|a| a.0 == 202), "{answers:?}");
    assert!(answers[..4].windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(limited().await, 2.0);
    assert_eq!(links(), 3, "{:?}", smtp.summary());
    assert_eq!(smtp.count(&email, "reset_password"), 3);
    // The last one asked for is the live one.
    let mut live = Vec::new();
    for mail in smtp.mails(&email, "reset_password") {
        let status = app
            .reset_password(&mail.token(), NEW_PASSWORD)
            .await
            .status();
        live.extend((status == 200).then_some(mail.token()));
    }
    let newest = smtp
        .mails(&email, "reset_password")
        .last()
        .map(|m| m.token());
    assert_eq!(live, Vec::from_iter(newest));
    // Notices are never limited.
    smtp.wait_for(&email, "password_changed").await;
}

fn retry_after(response: &Response) -> u64 {
    header(response, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds")
}

#[tokio::test]
async fn forgot_password_counts_against_the_client_ip_like_a_failed_login() {
    let (app, _smtp) = spawn_mail_app(&[("LOGIN_ATTEMPTS_IP_LIMIT", "3")]).await;

    for _ in 0..3 {
        assert_eq!(app.forgot_password(&unique_email()).await.status(), 202);
    }
    let limited = app.forgot_password(&unique_email()).await;

    assert!(retry_after(&limited) > 0);
    assert_error(limited, 429, "rate_limited").await;
    let login = app.login(&unique_email(), PASSWORD).await;
    assert_error(login, 429, "rate_limited").await;
}

#[tokio::test]
async fn resend_and_dead_links_count_against_the_client_ip() {
    let (app, smtp) = spawn_mail_app(&[("LOGIN_ATTEMPTS_IP_LIMIT", "3")]).await;
    let (_, token) = app.register_for_link(&smtp).await;
    assert_eq!(app.verify_email(&token).await.status(), 200);

    assert_eq!(app.resend_verification(&unique_email()).await.status(), 202);
    assert_error(app.verify_email(&token).await, 400, "link_invalid").await;
    assert_error(app.confirm_email(&token).await, 400, "link_invalid").await;
    let limited = app.resend_verification(&unique_email()).await;

    assert!(retry_after(&limited) > 0);
    assert_error(limited, 429, "rate_limited").await;
}
