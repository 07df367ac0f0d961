//! The embedded SQLite writer's WAL stays bounded under sustained writes: the writer never
//! checkpoints, a checkpointer thread copies the WAL back and restarts it once it passes its
//! cap (issue 29, item 5). Without the checkpointer the WAL grows with every commit.

use std::path::Path;
use std::time::Duration;

use promoctl::embedded::sqlite::{Writer, exec, query_row};
use promoctl::embedded::wal_checkpointer::WalPolicy;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL);";

fn wal_bytes(db: &Path) -> u64 {
    let wal = db.with_file_name(format!("{}-wal", db.file_name().and_then(|n| n.to_str()).unwrap_or("")));
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

async fn count(db: &Writer) -> i64 {
    db.run(|c| query_row(c, "SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).map_err(|e| e.to_string()), |e| e)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_under_its_cap_while_writes_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    // A 4 MiB cap (1,000 pages of 4 KiB), looked at every 5 ms.
    let cap_pages = 1_000;
    let policy = WalPolicy { every: Duration::from_millis(5), cap_pages };
    let db = Writer::open_with(&path, SCHEMA, policy).unwrap();

    // 24,000 rows of 2 KiB, 16 callers at a time (batched commits): over 48 MiB of pages
    // appended to the WAL, twelve times its cap, with no pause for the checkpointer.
    let (rounds, callers) = (1_500, 16);
    let mut largest = 0;
    for round in 0..rounds {
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..callers {
            let (db, k) = (db.clone(), round * callers + i);
            writes.spawn(async move {
                db.run(
                    move |c| {
                        exec(c, "INSERT INTO t (k, v) VALUES (?1, zeroblob(2048))", [k]).map_err(|e| e.to_string())
                    },
                    |e| e,
                )
                .await
            });
        }
        while let Some(done) = writes.join_next().await {
            done.unwrap().unwrap();
        }
        largest = largest.max(wal_bytes(&path));
    }

    // The bound: the checkpointer restarts the WAL past its cap (plus what the writer
    // commits meanwhile: a few hundred pages here); should it fall behind (a disk slow to
    // sync), the writer restarts the WAL itself past four caps. Four caps and a batch.
    let bound = (4 * u64::from(cap_pages) + 256) * 4096;
    assert!(largest <= bound, "the WAL reached {largest} bytes, over {bound} (cap {cap_pages} pages)");
    assert!(largest > 0, "the writer wrote through the WAL");
    assert_eq!(count(&db).await, i64::from(rounds * callers), "every acknowledged write is there");
    let check = db
        .run(
            |c| query_row(c, "PRAGMA integrity_check", [], |r| r.get::<_, String>(0)).map_err(|e| e.to_string()),
            |e| e,
        )
        .await
        .unwrap();
    assert_eq!(check, "ok");

    // Reopened, the file holds every row (what the checkpointer copied back and the rest).
    drop(db);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = Writer::open(&path, SCHEMA).unwrap();
    assert_eq!(count(&again).await, i64::from(rounds * callers));
}
