//! Sessions and login counters on a real Redis Cluster: three masters started here from
//! `redis-server`, and two instances of the service on them that must behave as one.

use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::cluster::RedisCluster;
use crate::helpers::*;

async fn name_seen_at(address: &str, access: &str) -> String {
    let response = me_at(address, access).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"]["user"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
#[ignore = "needs redis-server and redis-cli (Debian's redis-server and redis-tools): run with --include-ignored"]
async fn two_instances_on_a_three_master_cluster_behave_as_one() {
    let cluster = RedisCluster::start();
    let prefix = format!("cluster-{}:", Uuid::new_v4().simple());
    let urls = cluster.urls();
    let settings = [
        // Blank counts as unset: the users' store stays, sessions go to the cluster.
        ("REDIS_URL", ""),
        ("REDIS_CLUSTER_URLS", urls.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("LOGIN_ATTEMPTS_LIMIT", "3"),
        ("REFRESH_REUSE_GRACE", "1s"),
    ];
    let a = spawn_app_on(TestStore::fresh().await, &settings).await;
    let b = a.sibling(&settings).await;

    for address in [&a.address, &b] {
        let health = get_json(&format!("{address}/api/healthchecker")).await;
        assert_eq!(health["checks"]["redis"], "up", "{health}");
    }

    // Sessions made on one instance are live on the other, for users on every node.
    let mut users = Vec::new();
    for i in 0..12 {
        let email = a.register_user().await;
        let at = if i % 2 == 0 { &a.address } else { &b };
        let login = login_at(at, &email, PASSWORD).await;
        assert_eq!(login.status(), 200);
        let session = session_from(&login);
        assert_eq!(me_at(&a.address, &session.access).await.status(), 200);
        assert_eq!(me_at(&b, &session.access).await.status(), 200);
        users.push((email, session));
    }
    let by_node = cluster.keys_by_node(&prefix).await;
    assert!(
        by_node.iter().filter(|keys| !keys.is_empty()).count() >= 2,
        "users spread over the masters: {by_node:?}"
    );
    // Each user's keys share one slot, which is what lets one MGET or script cover them.
    for (_, session) in &users {
        let user = claims_of(&session.access)["sub"]
            .as_str()
            .unwrap()
            .to_owned();
        let slots: std::collections::BTreeSet<i64> = by_node
            .iter()
            .flatten()
            .filter(|(key, _)| key.contains(&user))
            .map(|(_, slot)| *slot)
            .collect();
        assert_eq!(slots.len(), 1, "{user}: {by_node:?}");
    }

    // Rotation on B, an in-grace replay on A gets the very same tokens.
    let (_, first) = &users[0];
    let rotated = refresh_at(&b, &first.refresh).await;
    assert_eq!(rotated.status(), 200);
    let next = session_from(&rotated);
    let replay = refresh_at(&a.address, &first.refresh).await;
    assert_eq!(replay.status(), 200);
    let again = session_from(&replay);
    assert_eq!(
        (&again.access, &again.refresh),
        (&next.access, &next.refresh)
    );
    // After the grace window the replay is reuse, and the session ends on both.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_error(
        refresh_at(&a.address, &first.refresh).await,
        401,
        "refresh_reused",
    )
    .await;
    assert_error(me_at(&b, &next.access).await, 401, "session_revoked").await;
    assert_error(refresh_at(&b, &next.refresh).await, 401, "session_revoked").await;

    // A logout on A ends the session on B.
    let (_, second) = &users[1];
    assert_eq!(logout_at(&a.address, &second.access).await.status(), 200);
    assert_error(me_at(&b, &second.access).await, 401, "session_revoked").await;

    // A session listed on B, ended from B with a token of another session, is dead on A;
    // and ending all the others leaves only the current one, on both.
    let (email, fourth) = &users[4];
    let phone = session_from(&login_at(&a.address, email, PASSWORD).await);
    let laptop = session_from(&login_at(&a.address, email, PASSWORD).await);
    let listed = plain_client()
        .get(format!("{b}/api/users/me/sessions"))
        .bearer_auth(&laptop.access)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(listed["data"]["sessions"].as_array().unwrap().len(), 3);
    let phone_sid = claims_of(&phone.access)["sid"].as_str().unwrap().to_owned();
    let ended = plain_client()
        .delete(format!("{b}/api/users/me/sessions/{phone_sid}"))
        .bearer_auth(&laptop.access)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    assert_error(
        me_at(&a.address, &phone.access).await,
        401,
        "session_revoked",
    )
    .await;
    let others = plain_client()
        .delete(format!("{}/api/users/me/sessions", a.address))
        .bearer_auth(&laptop.access)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(others["data"]["ended"], 1);
    assert_error(me_at(&b, &fourth.access).await, 401, "session_revoked").await;
    assert_eq!(me_at(&b, &laptop.access).await.status(), 200);

    // Failed logins count across both instances.
    let (email, _) = &users[2];
    for at in [&a.address, &b, &a.address] {
        assert_eq!(login_at(at, email, "wrong password").await.status(), 401);
    }
    let limited = login_at(&b, email, PASSWORD).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    // A change to a user, announced by moving its stamp, is served by both at once.
    let (email, third) = &users[3];
    assert_eq!(name_seen_at(&a.address, &third.access).await, "Test User");
    assert_eq!(name_seen_at(&b, &third.access).await, "Test User");
    a.execute("UPDATE users SET name = 'Renamed' WHERE email = $1", email)
        .await;
    let user: Uuid = claims_of(&third.access)["sub"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let client = redis::cluster::ClusterClient::new(vec![urls.split(',').next().unwrap()]).unwrap();
    let mut conn = client.get_async_connection().await.unwrap();
    let stamp = rs256_auth::store::redis::sessions::stamp_key(&prefix, user);
    let () = conn.set(&stamp, "moved").await.unwrap();
    assert_eq!(name_seen_at(&a.address, &third.access).await, "Renamed");
    assert_eq!(name_seen_at(&b, &third.access).await, "Renamed");
}
