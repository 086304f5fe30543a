//! The mail store's rules, straight on the stores of both backends (the HTTP tests cannot make
//! the orders these need happen on purpose): a link asked for earlier never replaces one asked
//! for later, a link is issued only for the user as read, and two senders never take the same
//! message.

use rs256_auth::clock::now_ms;
use rs256_auth::domain::User;
use rs256_auth::store::Stores;
use rs256_auth::store::mail::{Issued, MailStore, NewLink, Outgoing, Purpose};
use uuid::Uuid;

use crate::helpers::*;

fn link(user: &User, hash: u8, requested_at: i64) -> NewLink {
    NewLink {
        hash: [hash; 32],
        purpose: Purpose::Reset,
        user: user.id,
        address: user.email.clone(),
        bound_email: user.email.clone(),
        bound_password: Some(user.password_hash.clone()),
        expires_at: now_ms() + 60_000,
        requested_at,
    }
}

fn mail(to: &str) -> Outgoing {
    Outgoing {
        id: Uuid::new_v4(),
        kind: "password_changed",
        recipient: to.to_owned(),
        sealed: None,
    }
}

async fn live(stores: &Stores, hash: u8) -> bool {
    let mail = &stores.mail;
    mail.is_live(&[hash; 32], Purpose::Reset, now_ms())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_link_asked_for_earlier_never_replaces_one_asked_for_later() {
    let app = spawn_app().await;
    let stores = stores_of(&app).await;
    let user = inserted(&stores).await;
    let to = user.email.clone();

    let later = stores.mail.issue(&link(&user, 2, 2_000), &mail(&to)).await;
    assert_eq!(later.unwrap(), Issued::Done);
    // Worked on second, asked for first: nothing is written, the later link stays.
    let earlier = stores.mail.issue(&link(&user, 1, 1_000), &mail(&to)).await;
    assert_eq!(earlier.unwrap(), Issued::Superseded);
    assert!(live(&stores, 2).await && !live(&stores, 1).await);

    let newest = stores.mail.issue(&link(&user, 3, 3_000), &mail(&to)).await;
    assert_eq!(newest.unwrap(), Issued::Done);
    assert!(live(&stores, 3).await && !live(&stores, 2).await);
}

#[tokio::test]
async fn a_link_is_issued_only_for_the_user_as_read() {
    let app = spawn_app().await;
    let stores = stores_of(&app).await;
    let user = inserted(&stores).await;
    let mut changed = link(&user, 4, 1_000);
    changed.bound_password = Some("a hash the user no longer has".into());
    let issued = stores.mail.issue(&changed, &mail(&user.email)).await;
    assert_eq!(issued.unwrap(), Issued::Stale);
    let mut moved = link(&user, 5, 1_000);
    moved.bound_email = unique_email();
    let issued = stores.mail.issue(&moved, &mail(&user.email)).await;
    assert_eq!(issued.unwrap(), Issued::Stale);
    assert!(!live(&stores, 4).await && !live(&stores, 5).await);
}

#[tokio::test]
async fn two_senders_never_take_the_same_message_and_a_retry_waits_its_turn() {
    let app = spawn_app().await;
    // Two instances' stores: the app's own sender is kept away by the lease and the due time.
    let (one, two) = (stores_of(&app).await, stores_of(&app).await);
    let to = unique_email();
    let queued: Vec<Outgoing> = (0..30).map(|_| mail(&to)).collect();
    for message in &queued {
        one.mail.queue(message).await.unwrap();
    }
    // Claimed as due and leased far ahead. The app's own sender may take a few first; the
    // test follows only what these two took.
    let (now, lease) = (now_ms() + 10_000, now_ms() + 600_000);
    let (a, b) = tokio::join!(
        one.mail.claim(now, lease, 20),
        two.mail.claim(now, lease, 20)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut taken: Vec<Uuid> = a.iter().chain(&b).map(|m| m.id).collect();
    let claimed = taken.len();
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), claimed, "a message taken twice");

    let first = a.first().or(b.first()).expect("something claimed").clone();
    // Only the lease's holder may reschedule or delete it.
    let mut stale = first.clone();
    stale.lease_until -= 1;
    assert!(!two.mail.retry(&stale, now).await.unwrap());
    assert!(!two.mail.remove(&stale).await.unwrap());

    assert!(one.mail.retry(&first, now + 5_000).await.unwrap());
    let early = two.mail.claim(now + 4_999, lease, 50).await.unwrap();
    assert!(
        early.iter().all(|m| m.id != first.id),
        "a retry before its time"
    );
    let due = two.mail.claim(now + 5_000, lease + 1, 50).await.unwrap();
    let retried = due
        .iter()
        .find(|m| m.id == first.id)
        .expect("the retry, once due");
    assert_eq!(retried.attempts, 2);
    assert!(
        !one.mail.remove(&first).await.unwrap(),
        "the first lease is over"
    );
    assert!(two.mail.remove(retried).await.unwrap());
    let rest = one.mail.claim(now + 700_000, lease + 700_000, 100).await;
    assert!(rest.unwrap().iter().all(|m| m.id != first.id), "removed");
}
