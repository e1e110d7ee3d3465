//! Every capability's background jobs: each capability registers its own.

use app::platform::jobs::JobRegistry;

pub fn registry(settings: &app::platform::settings::Settings) -> JobRegistry {
    let mut jobs = JobRegistry::default();
    app::chat::jobs::register(&mut jobs, settings);
    app::meetings::jobs::register(&mut jobs);
    app::wages::jobs::register(&mut jobs, settings);
    app::accounts::jobs::register(&mut jobs);
    app::broker::jobs::register(&mut jobs, settings);
    app::scheduler::subscriptions::register(&mut jobs);
    app::platform::changes::register_jobs(&mut jobs);
    // The demo's seeds (queued at start-up when SB_DEMO_DATA is on).
    app::broker::demo::register(&mut jobs);
    app::scheduler::demo::register(&mut jobs);
    app::meetings::demo::register(&mut jobs);
    app::chat::demo::register(&mut jobs);
    jobs
}
