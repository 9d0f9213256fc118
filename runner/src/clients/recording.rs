//! A report of every client call a run makes (`tgrun run`): each client is wrapped so a
//! call is timed and its result summed up, whatever answers it (the real client or a
//! stand-in).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::api_service::NetworkAnswer;
use super::{ApiServiceApi, ClientError, Clients, PrometheusApi, SqlApi, SqlTx};
use crate::bindings::tgrun::job::sql::{ExecResult, RowSet, Value};

/// One call: which client, what was asked, how long it took, what came back.
#[derive(Debug, Clone)]
pub struct Call {
    pub client: &'static str,
    pub what: String,
    pub took: Duration,
    pub result: String,
}

/// The calls made so far, in order.
#[derive(Debug, Default)]
pub struct CallLog(Mutex<Vec<Call>>);

impl CallLog {
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Times `call`, then keeps it with its result summed up by `sum`.
    async fn time<T>(
        &self,
        client: &'static str,
        what: String,
        call: impl Future<Output = Result<T, ClientError>>,
        sum: impl Fn(&T) -> String,
    ) -> Result<T, ClientError> {
        let start = Instant::now();
        let out = call.await;
        let result = match &out {
            Ok(v) => sum(v),
            Err(e) => format!("error: {e}"),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(Call {
            client,
            what,
            took: start.elapsed(),
            result,
        });
        out
    }
}

/// A statement on one line, for the report.
fn one_line(statement: &str) -> String {
    statement.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn bytes<S: AsRef<str>>(s: &S) -> String {
    format!("ok, {} bytes", s.as_ref().len())
}

fn row_count(r: &RowSet) -> String {
    format!("ok, {} rows", r.rows.len())
}

fn affected(r: &ExecResult) -> String {
    format!("ok, {} rows affected", r.rows_affected)
}

/// `clients`, each wrapped to report its calls to `log`.
pub fn wrap(clients: Clients, log: &Arc<CallLog>) -> Clients {
    Clients {
        prometheus: clients.prometheus.map(|inner| {
            Arc::new(Recorded {
                inner,
                log: log.clone(),
            }) as Arc<dyn PrometheusApi>
        }),
        api_service: clients.api_service.map(|inner| {
            Arc::new(Recorded {
                inner,
                log: log.clone(),
            }) as Arc<dyn ApiServiceApi>
        }),
        sql: clients.sql.map(|inner| {
            Arc::new(Recorded {
                inner,
                log: log.clone(),
            }) as Arc<dyn SqlApi>
        }),
    }
}

struct Recorded<C: ?Sized> {
    inner: Arc<C>,
    log: Arc<CallLog>,
}

#[async_trait]
impl PrometheusApi for Recorded<dyn PrometheusApi> {
    async fn get(&self, endpoint: &str, params: &[(&str, String)]) -> Result<String, ClientError> {
        let args: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let what = format!("{endpoint} {}", args.join(" "));
        self.log
            .time("prometheus", what, self.inner.get(endpoint, params), bytes)
            .await
    }

    async fn healthy(&self) -> bool {
        self.inner.healthy().await
    }

    fn address(&self) -> String {
        self.inner.address()
    }
}

#[async_trait]
impl ApiServiceApi for Recorded<dyn ApiServiceApi> {
    async fn network_names(&self) -> Result<Vec<String>, ClientError> {
        self.log
            .time(
                "api_service",
                "network_names".into(),
                self.inner.network_names(),
                |n| format!("ok, {}", n.join(", ")),
            )
            .await
    }

    async fn request(
        &self,
        network: &str,
        endpoint: &str,
        params: &str,
        timeout: Option<Duration>,
    ) -> Result<String, ClientError> {
        let what = format!("{endpoint} on {network} {params}");
        let call = self.inner.request(network, endpoint, params, timeout);
        self.log.time("api_service", what, call, bytes).await
    }

    async fn request_many(
        &self,
        endpoint: &str,
        params: &[(String, String)],
        timeout: Option<Duration>,
        all: bool,
    ) -> Result<Vec<NetworkAnswer>, ClientError> {
        let networks: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        let on = if all {
            "every network".to_owned()
        } else {
            networks.join(", ")
        };
        let what = format!("{endpoint} on {on}");
        let call = self.inner.request_many(endpoint, params, timeout, all);
        self.log
            .time("api_service", what, call, |answers| {
                let failed = answers.iter().filter(|(_, a)| a.is_err()).count();
                format!("ok, {} networks, {failed} failed", answers.len())
            })
            .await
    }

    async fn healthy(&self) -> bool {
        self.inner.healthy().await
    }

    fn address(&self) -> String {
        self.inner.address()
    }
}

#[async_trait]
impl SqlApi for Recorded<dyn SqlApi> {
    async fn query(&self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError> {
        let call = self.inner.query(statement, params);
        self.log
            .time(
                "sql",
                format!("query {}", one_line(statement)),
                call,
                row_count,
            )
            .await
    }

    async fn execute(&self, statement: &str, params: &[Value]) -> Result<ExecResult, ClientError> {
        let call = self.inner.execute(statement, params);
        self.log
            .time(
                "sql",
                format!("execute {}", one_line(statement)),
                call,
                affected,
            )
            .await
    }

    async fn begin(&self) -> Result<Box<dyn SqlTx>, ClientError> {
        let tx = self
            .log
            .time("sql", "begin".into(), self.inner.begin(), |_| "ok".into())
            .await?;
        Ok(Box::new(RecordedTx {
            inner: tx,
            log: self.log.clone(),
        }))
    }

    async fn healthy(&self) -> bool {
        self.inner.healthy().await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn dialect(&self) -> &'static str {
        self.inner.dialect()
    }

    fn caps(&self) -> super::Caps {
        self.inner.caps()
    }
}

struct RecordedTx {
    inner: Box<dyn SqlTx>,
    log: Arc<CallLog>,
}

#[async_trait]
impl SqlTx for RecordedTx {
    async fn query(&mut self, statement: &str, params: &[Value]) -> Result<RowSet, ClientError> {
        let call = self.inner.query(statement, params);
        self.log
            .time(
                "sql",
                format!("tx query {}", one_line(statement)),
                call,
                row_count,
            )
            .await
    }

    async fn execute(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<ExecResult, ClientError> {
        let call = self.inner.execute(statement, params);
        self.log
            .time(
                "sql",
                format!("tx execute {}", one_line(statement)),
                call,
                affected,
            )
            .await
    }

    async fn commit(self: Box<Self>) -> Result<(), ClientError> {
        let log = self.log.clone();
        log.time("sql", "commit".into(), self.inner.commit(), |_| "ok".into())
            .await
    }

    async fn rollback(self: Box<Self>) -> Result<(), ClientError> {
        let log = self.log.clone();
        log.time("sql", "rollback".into(), self.inner.rollback(), |_| {
            "ok".into()
        })
        .await
    }
}
