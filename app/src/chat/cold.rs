//! Cold storage of expired messages: gzip-compressed newline-delimited JSON objects in
//! the object store, one line per message, under a time-partitioned key
//! (`chat/YYYY/MM/DD/HH/<first id>-<last id>.ndjson.gz`). Recently read batches are kept
//! decoded in memory, so reading several ids of one batch fetches it once.

use super::store::message;
use crate::platform::object_store::{SharedStore, StoreError};
use bytes::Bytes;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

/// One archived message: everything `GET /chat/{id}` answers with, and more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColdLine {
    pub id: i64,
    pub username: String,
    pub sender_id: Option<i64>,
    pub sender: Option<String>,
    pub text: String,
    pub created_at: i64,
    pub expiration_date: i64,
}

impl From<&message::Model> for ColdLine {
    fn from(m: &message::Model) -> Self {
        Self {
            id: m.id,
            username: m.username.clone(),
            sender_id: m.sender_id,
            sender: m.sender.clone(),
            text: m.text.clone(),
            created_at: m.created_at,
            expiration_date: m.expiration_date,
        }
    }
}

/// The object key of a batch archived at `now_ms` holding ids `first..=last`.
pub fn batch_key(now_ms: i64, first: i64, last: i64) -> String {
    let at = crate::platform::time::to_datetime(now_ms);
    format!("chat/{}/{first:012}-{last:012}.ndjson.gz", at.format("%Y/%m/%d/%H"))
}

pub fn encode(lines: &[ColdLine]) -> std::io::Result<Bytes> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        serde_json::to_writer(&mut gz, line)?;
        gz.write_all(b"\n")?;
    }
    Ok(gz.finish()?.into())
}

pub fn decode(bytes: &[u8]) -> std::io::Result<Vec<ColdLine>> {
    BufReader::new(GzDecoder::new(bytes))
        .lines()
        .map(|l| l.and_then(|l| serde_json::from_str(&l).map_err(std::io::Error::other)))
        .collect()
}

/// Decoded batches, least recently used evicted first.
#[derive(Clone)]
pub struct BatchCache {
    inner: Arc<Mutex<(HashMap<String, Arc<Vec<ColdLine>>>, VecDeque<String>)>>,
    capacity: usize,
}

impl BatchCache {
    pub fn new(capacity: usize) -> Self {
        Self { inner: Default::default(), capacity: capacity.max(1) }
    }

    /// The batch at `key`, from memory or the store (`None` if the object is gone).
    pub async fn get(&self, store: &SharedStore, key: &str) -> Result<Option<Arc<Vec<ColdLine>>>, StoreError> {
        if let Some(hit) = self.touch(key) {
            metrics::counter!("chat_cold_reads_total", "cache" => "hit").increment(1);
            return Ok(Some(hit));
        }
        metrics::counter!("chat_cold_reads_total", "cache" => "miss").increment(1);
        let Some(bytes) = store.get(key).await? else { return Ok(None) };
        let lines = Arc::new(decode(&bytes)?);
        let mut guard = self.inner.lock().expect("cache lock");
        let (map, order) = &mut *guard;
        if map.insert(key.to_owned(), lines.clone()).is_none() {
            order.push_back(key.to_owned());
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        Ok(Some(lines))
    }

    fn touch(&self, key: &str) -> Option<Arc<Vec<ColdLine>>> {
        let mut guard = self.inner.lock().expect("cache lock");
        let (map, order) = &mut *guard;
        let hit = map.get(key).cloned()?;
        if let Some(pos) = order.iter().position(|k| k == key) {
            let k = order.remove(pos).expect("position is in range");
            order.push_back(k);
        }
        Some(hit)
    }

    pub fn forget(&self, key: &str) {
        let mut guard = self.inner.lock().expect("cache lock");
        guard.0.remove(key);
        guard.1.retain(|k| k != key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_keys_are_time_partitioned() {
        let lines: Vec<ColdLine> = (1..=3)
            .map(|id| ColdLine {
                id,
                username: "ada".into(),
                sender_id: Some(7),
                sender: Some("grace".into()),
                text: format!("line {id}\nwith a newline and ünïcode"),
                created_at: 1_000 * id,
                expiration_date: 2_000 * id,
            })
            .collect();
        let bytes = encode(&lines).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
        assert_eq!(decode(&bytes).unwrap(), lines);
        // 2026-11-18T11:08:43Z
        assert_eq!(batch_key(1_795_000_123_456, 1, 42), "chat/2026/11/18/11/000000000001-000000000042.ndjson.gz");
    }
}
