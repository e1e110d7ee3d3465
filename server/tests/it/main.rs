//! Integration tests: the real server over HTTP, and the stores against real SQLite,
//! MariaDB and S3-compatible servers. One test binary, so it links once.

#[macro_use]
mod support;

mod abuse;
mod accounts;
mod booking;
mod broker;
mod broker_processes;
mod receiver;
mod recurrence;
mod scheduler;
mod security;
mod subscriptions;
mod changes;
mod crash;
mod database;
mod demo;
mod chat;
mod jobs;
mod meetings;
mod object_store;
mod pages;
mod wages;
mod whole_app;
