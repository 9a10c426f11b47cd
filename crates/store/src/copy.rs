//! Rows in COPY's binary format, for `COPY … FROM STDIN (FORMAT binary)`.
//!
//! The format: a fixed header, then per row the number of fields (int16) and per field its
//! length (int32) and bytes, then a trailer (-1 as int16). Integers are big-endian; a
//! `timestamptz` is microseconds since 2000-01-01 UTC; a `uuid` its 16 bytes; `text` its UTF-8
//! bytes. Only the types the drain writes are here.

use chrono::{DateTime, Utc};
use issuance_core::error::Error;
use sqlx::PgConnection;
use uuid::Uuid;

/// Seconds from the Unix epoch to Postgres' (2000-01-01).
const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;

/// A COPY binary payload being written.
pub struct BinaryRows {
    buf: Vec<u8>,
    rows: u64,
}

impl BinaryRows {
    /// An empty payload with room for about `rows` rows of `row_bytes` each.
    pub fn with_capacity(rows: usize, row_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(19 + rows * row_bytes + 2);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self { buf, rows: 0 }
    }

    /// Starts a row of `fields` fields.
    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self.rows += 1;
        self
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        let len = i32::try_from(bytes.len()).expect("a field under 2 GiB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    /// A `uuid`.
    pub fn uuid(&mut self, v: Uuid) -> &mut Self {
        self.field(v.as_bytes())
    }

    /// A `text`.
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.field(v.as_bytes())
    }

    /// An `int8`.
    pub fn int8(&mut self, v: i64) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    /// An `int4`.
    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.field(&v.to_be_bytes())
    }

    /// A `timestamptz`.
    pub fn timestamptz(&mut self, v: DateTime<Utc>) -> &mut Self {
        let micros = v.timestamp_micros() - PG_EPOCH_UNIX_SECS * 1_000_000;
        self.field(&micros.to_be_bytes())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The payload, trailer included.
    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }

    /// Sends the rows with `statement` (a `COPY … FROM STDIN (FORMAT binary)`); returns how many
    /// rows Postgres wrote. A constraint the rows break fails the whole COPY.
    pub async fn copy(self, conn: &mut PgConnection, statement: &str) -> Result<u64, Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        let mut copy = conn.copy_in_raw(statement).await?;
        if let Err(e) = copy.send(self.finish()).await {
            let _ = copy.abort("send failed").await;
            return Err(e.into());
        }
        Ok(copy.finish().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_is_counted_fields_with_lengths_between_header_and_trailer() {
        let mut rows = BinaryRows::with_capacity(1, 32);
        let at = DateTime::from_timestamp(PG_EPOCH_UNIX_SECS + 1, 0).unwrap();
        rows.row(3).int4(7).text("ab").timestamptz(at);
        assert_eq!(rows.rows(), 1);
        let bytes = rows.finish();
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0, 3]);
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 7]);
        want.extend_from_slice(&[0, 0, 0, 2, b'a', b'b']);
        want.extend_from_slice(&[0, 0, 0, 8]);
        want.extend_from_slice(&1_000_000i64.to_be_bytes());
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(bytes, want);
    }
}
