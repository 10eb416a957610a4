//! Serving a router over HTTP/1.1 on a [`KillableListener`], with keep-alive and an idle
//! timeout: a connection waiting for its next request longer than
//! [`crate::SimConfig::idle_timeout`] is closed, as real servers do, so a client that keeps
//! a pooled connection (or leaves a body unread) is not held open forever. A request being
//! answered is never idle, however long it takes.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;

use crate::listener::{ConnectionControl, KillableListener};

/// Serves `router` on `listener` until `stopped` turns true (or its sender goes away), then
/// stops accepting, lets every connection finish the request it is answering, and returns
/// once all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    idle_timeout: Option<Duration>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut listener = KillableListener::new(listener);
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping(&mut stopped) => break,
        };
        let control = ConnectionControl::of(&stream);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo(control.clone()));
            let mut router = router.clone();
            async move { router.call(request).await }
        });
        let mut builder = http1::Builder::new();
        builder.keep_alive(true);
        if let Some(idle) = idle_timeout {
            // hyper starts this timer whenever the connection waits for a request head:
            // on a fresh connection and after every response, never while a request is
            // being answered.
            builder.timer(TokioTimer::new()).header_read_timeout(idle);
        }
        let mut stopped = stopped.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stopping(&mut stopped) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
}

/// Resolves once the simulator is stopping (or its handle is gone).
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
