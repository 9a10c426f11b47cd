//! `coupon_codes`: the codes of every batch.
//!
//! Rows are written with COPY, a block at a time, and looked up through the unique index on
//! `code` or the BRIN index on `(batch_id, seq)` (rows of a batch are written in `seq` order, so
//! the block ranges stay narrow while the index costs almost nothing to maintain). Only rows with
//! `seq < coupon_batches.code_count` count; callers pass that bound.

use futures::{StreamExt, stream::BoxStream};
use issuance_core::{enums::CodeStatus, error::Error, paging::Paging};
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};

/// Writes rows given as COPY text (`batch_id \t seq \t code \n` per row); returns how many.
pub async fn copy_rows(conn: &mut PgConnection, rows: &[u8]) -> Result<u64, Error> {
    let mut copy = conn
        .copy_in_raw("COPY coupon_codes (batch_id, seq, code) FROM STDIN")
        .await?;
    if let Err(e) = copy.send(rows).await {
        let _ = copy.abort("send failed").await;
        return Err(e.into());
    }
    Ok(copy.finish().await?)
}

/// Lets this transaction's commit return before its WAL reaches the disk. For job chunks only:
/// a crash loses the chunk together with its progress step, and the job writes it again.
pub async fn relax_commit(conn: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether an error is a code that exists already.
pub fn is_code_collision(err: &Error) -> bool {
    matches!(err, Error::Db(e) if crate::constraint(e) == Some("coupon_codes_code_key"))
}

/// Deletes the batch's rows with `lo <= seq < hi`; returns how many.
pub async fn delete_range(db: impl PgExecutor<'_>, batch_id: i64, lo: i64, hi: i64) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM coupon_codes WHERE batch_id = $1 AND seq >= $2 AND seq < $3")
            .bind(batch_id)
            .bind(lo)
            .bind(hi)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Which of these codes exist already.
pub async fn existing(db: impl PgExecutor<'_>, codes: &[String]) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT code FROM coupon_codes WHERE code = ANY($1)")
            .bind(codes)
            .fetch_all(db)
            .await?,
    )
}

/// A page of the batch's codes (the first `count` positions), by position.
pub async fn page(
    db: &PgPool,
    batch_id: i64,
    count: i32,
    status: Option<CodeStatus>,
    paging: Paging,
) -> Result<(i64, Vec<CodeRow>), Error> {
    let Some(status) = status else {
        // Positions are dense, so a page is a range of them: no OFFSET scan, however deep.
        let lo = paging.offset().min(i64::from(count));
        let hi = (lo + paging.size).min(i64::from(count));
        let rows = sqlx::query_as(
            "SELECT seq, code, status FROM coupon_codes
             WHERE batch_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
        )
        .bind(batch_id)
        .bind(lo)
        .bind(hi)
        .fetch_all(db)
        .await?;
        return Ok((i64::from(count), rows));
    };
    let filter = |qb: &mut QueryBuilder<Postgres>| {
        qb.push(" WHERE batch_id = ")
            .push_bind(batch_id)
            .push(" AND seq < ")
            .push_bind(count)
            .push(" AND status = ")
            .push_bind(status);
    };
    let mut total = QueryBuilder::new("SELECT count(*) FROM coupon_codes");
    filter(&mut total);
    let total: i64 = total.build_query_scalar().fetch_one(db).await?;
    let mut rows = QueryBuilder::new("SELECT seq, code, status FROM coupon_codes");
    filter(&mut rows);
    rows.push(" ORDER BY seq LIMIT ")
        .push_bind(paging.size)
        .push(" OFFSET ")
        .push_bind(paging.offset());
    Ok((total, rows.build_query_as().fetch_all(db).await?))
}

/// Streams the batch's codes as CSV (`code,status` with a header), straight from Postgres' COPY,
/// so memory stays bounded however many there are. Storage order, not position order: sorting
/// ten million rows would cost more than the export.
///
/// The COPY runs on a connection taken out of the pool and owned by a task: a client that goes
/// away mid-download drops the stream, the task ends, and the connection is closed instead of
/// going back to the pool in the middle of a COPY (which would break its next user).
pub async fn export_csv(
    db: &PgPool,
    batch_id: i64,
    count: i32,
    status: Option<CodeStatus>,
) -> Result<BoxStream<'static, Result<bytes::Bytes, Error>>, Error> {
    // COPY takes no bind parameters: every value below is a number or an enum label, formatted
    // by us, never text from the request.
    let status_filter = status
        .map(|s| format!(" AND status = '{}'", s.as_str()))
        .unwrap_or_default();
    let statement = format!(
        "COPY (SELECT code, status FROM coupon_codes
               WHERE batch_id = {batch_id} AND seq < {count}{status_filter})
         TO STDOUT WITH (FORMAT csv, HEADER)"
    );
    let mut conn = db.acquire().await?.detach();
    // The export lasts as long as its client reads; the pool's statement timeout is for requests.
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, Error>>(8);
    // The first chunk (or error) is awaited here, so a failing statement is an error answer,
    // not a broken download.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), Error>>();
    tokio::spawn(async move {
        let mut stream = match conn.copy_out_raw(&statement).await {
            Ok(s) => {
                let _ = first_tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = first_tx.send(Err(e.into()));
                return;
            }
        };
        while let Some(chunk) = stream.next().await {
            if tx.send(chunk.map_err(Error::from)).await.is_err() {
                break;
            }
        }
    });
    first_rx
        .await
        .map_err(|_| Error::protocol("code export", "the export task ended early"))??;
    Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed())
}

/// One code.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CodeRow {
    /// Its position in the batch.
    pub seq: i32,
    /// The code.
    pub code: String,
    /// Its status.
    pub status: CodeStatus,
}
