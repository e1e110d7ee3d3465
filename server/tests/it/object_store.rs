//! The object store contract, run against the local folder and a real S3-compatible
//! server (moto, started by the test command; its endpoint is in SB_TEST_S3_ENDPOINT).

use app::platform::object_store::{LocalFolder, ObjectStore, S3Settings, S3Store};
use bytes::Bytes;

pub fn s3_endpoint() -> String {
    std::env::var("SB_TEST_S3_ENDPOINT")
        .expect("SB_TEST_S3_ENDPOINT must point at an S3-compatible server; ./scripts/test.sh starts one")
}

/// A fresh bucket on the test S3 server.
pub async fn s3_store() -> (S3Store, S3Settings) {
    let settings = S3Settings {
        endpoint: Some(s3_endpoint()),
        bucket: format!("sb-test-{:012x}", rand::random::<u64>() >> 16),
        region: "us-east-1".into(),
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        path_style: true,
    };
    let store = S3Store::new(&settings);
    store.ensure_bucket().await.expect("create bucket");
    (store, settings)
}

async fn contract(store: &dyn ObjectStore) {
    assert!(store.check().await.is_ok());
    assert_eq!(store.get("chat/2026/missing.ndjson.gz").await.unwrap(), None);

    store.put("chat/2026/11/22/a.ndjson.gz", Bytes::from_static(b"first")).await.unwrap();
    store.put("chat/2026/11/22/b.ndjson.gz", Bytes::from_static(b"second")).await.unwrap();
    store.put("chat/2026/11/23/c.ndjson.gz", Bytes::from_static(b"third")).await.unwrap();
    store.put("spool/x.json", Bytes::from_static(b"{}")).await.unwrap();
    assert_eq!(store.get("chat/2026/11/22/a.ndjson.gz").await.unwrap().unwrap(), "first");

    // Overwrite replaces.
    store.put("chat/2026/11/22/a.ndjson.gz", Bytes::from_static(b"first, again")).await.unwrap();
    assert_eq!(store.get("chat/2026/11/22/a.ndjson.gz").await.unwrap().unwrap(), "first, again");

    // Listing: by prefix (also mid-segment), in order, paged with start_after.
    let all = store.list("chat/", None, 100).await.unwrap();
    assert_eq!(all, ["chat/2026/11/22/a.ndjson.gz", "chat/2026/11/22/b.ndjson.gz", "chat/2026/11/23/c.ndjson.gz"]);
    assert_eq!(store.list("chat/2026/11/2", None, 100).await.unwrap(), all);
    assert_eq!(store.list("chat/2026/11/23", None, 100).await.unwrap(), ["chat/2026/11/23/c.ndjson.gz"]);
    assert_eq!(store.list("chat/", None, 2).await.unwrap(), all[..2]);
    assert_eq!(store.list("chat/", Some(&all[1]), 100).await.unwrap(), all[2..]);
    assert!(store.list("nothing/", None, 10).await.unwrap().is_empty());

    store.delete("chat/2026/11/22/b.ndjson.gz").await.unwrap();
    store.delete("chat/2026/11/22/b.ndjson.gz").await.unwrap(); // deleting twice is fine
    assert_eq!(store.get("chat/2026/11/22/b.ndjson.gz").await.unwrap(), None);

    // Keys that could escape the store are refused before any I/O.
    for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", "sp ace", ""] {
        assert!(store.put(bad, Bytes::from_static(b"x")).await.is_err(), "{bad:?}");
    }

    // A large object comes back byte-identical.
    let big: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    store.put("big/object.bin", Bytes::from(big.clone())).await.unwrap();
    assert!(store.get("big/object.bin").await.unwrap().unwrap() == big, "12 MiB object round-trips");

    // Files go in and come out without being held in memory (wage uploads), identical.
    let dir = tempfile::tempdir().unwrap();
    let (source, copy) = (dir.path().join("upload.csv"), dir.path().join("copy.csv"));
    std::fs::write(&source, &big).unwrap();
    store.put_file("wages/uploads/x.csv", &source).await.unwrap();
    assert!(store.download("wages/uploads/x.csv", &copy).await.unwrap());
    assert!(std::fs::read(&copy).unwrap() == big, "a 12 MiB file round-trips");
    assert!(!store.download("wages/uploads/missing.csv", &copy).await.unwrap(), "a missing object says so");
}

#[tokio::test]
async fn local_folder_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFolder::new(dir.path()).unwrap();
    contract(&store).await;
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "no temporary files left behind: {leftovers:?}");
}

#[tokio::test]
async fn s3_honours_the_contract() {
    let (store, _) = s3_store().await;
    contract(&store).await;
}

#[tokio::test]
async fn s3_reports_an_unreachable_server() {
    let settings = S3Settings {
        endpoint: Some("http://127.0.0.1:9".into()),
        bucket: "nowhere".into(),
        region: "us-east-1".into(),
        access_key: Some("k".into()),
        secret_key: Some("s".into()),
        path_style: true,
    };
    let store = S3Store::new(&settings);
    assert!(store.check().await.is_err());
    assert!(store.put("a/b", Bytes::from_static(b"x")).await.is_err());
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
