use super::{Auth, ChangeMyPassword, CreateMyToken, RevokeMyToken, SavePreferences, SignOutEverywhere, COMMON_ZONES};
use super::load_preferences;
use crate::ui::{Audience, ErrorAlert, FieldError, Loaded};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

/// The right-hand side of the top bar: who is signed in, or links to sign in.
#[component]
pub fn UserMenu() -> impl IntoView {
    let auth = Auth::expect();
    view! {
        <div class="usermenu">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match auth.viewer.await {
                        Ok(Some(viewer)) => view! {
                            {viewer.is_admin().then(|| view! { <span class="badge accent">"admin"</span> })}
                            <A href="/account" attr:class="user-link" attr:data-testid="current-user">
                                {viewer.display_name}
                            </A>
                            <A href="/settings" attr:class="hint">"Settings"</A>
                            <ActionForm action=auth.log_out>
                                <button type="submit" class="secondary small">"Sign out"</button>
                            </ActionForm>
                        }
                        .into_any(),
                        _ => view! {
                            <A href="/login">"Sign in"</A>
                            <A href="/signup" attr:class="btn small">"Create account"</A>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = Auth::expect();
    let next = move || use_query_map().read().get("next");
    let error = move || auth.log_in.value().get().and_then(Result::err);
    view! {
        <main class="page">
            <div class="card auth-card">
                <h1>"Sign in"</h1>
                <p class="lead">"Welcome back to Switchboard."</p>
                <ActionForm action=auth.log_in attr:class="form">
                    <input type="hidden" name="next" value=next/>
                    <div class="field">
                        <label for="username">"Username"</label>
                        <input id="username" name="username" type="text" autocomplete="username" required/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="current-password" required/>
                    </div>
                    <ErrorAlert error=Signal::derive(error)/>
                    <button type="submit">"Sign in"</button>
                </ActionForm>
                <p class="hint">"No account yet? " <A href="/signup">"Create one"</A></p>
            </div>
        </main>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let auth = Auth::expect();
    let error = Signal::derive(move || auth.sign_up.value().get().and_then(Result::err));
    view! {
        <main class="page">
            <div class="card auth-card">
                <h1>"Create your account"</h1>
                <p class="lead">"Create an account to use the calendar, meetings, inbox and wage data."</p>
                <ActionForm action=auth.sign_up attr:class="form">
                    <div class="field">
                        <label for="username">"Username"</label>
                        <input id="username" name="username" type="text" autocomplete="username" required
                            minlength="3" maxlength="32"/>
                        <span class="hint">"3–32 characters: letters, digits, _ . -"</span>
                        <FieldError error field="username"/>
                    </div>
                    <div class="field">
                        <label for="display_name">"Display name"</label>
                        <input id="display_name" name="display_name" type="text" autocomplete="name" maxlength="100"/>
                        <FieldError error field="display_name"/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="new-password" required
                            minlength="10"/>
                        <span class="hint">"At least 10 characters; a few unrelated words work well."</span>
                        <FieldError error field="password"/>
                    </div>
                    <details class="field">
                        <summary>"Setting up a new installation?"</summary>
                        <label for="setup_token">"Setup token"</label>
                        <input id="setup_token" name="setup_token" type="text" autocomplete="off" spellcheck="false"/>
                        <span class="hint">
                            "The server logs a one-time setup token while it has no administrator; "
                            "the account that presents it becomes the first one."
                        </span>
                        <FieldError error field="setup_token"/>
                    </details>
                    <ErrorAlert error unless_field=true/>
                    <button type="submit">"Create account"</button>
                </ActionForm>
                <p class="hint">"Already registered? " <A href="/login">"Sign in"</A></p>
            </div>
        </main>
    }
}

/// Personal API tokens: create (shown once), list, revoke.
#[component]
pub fn AccountPage() -> impl IntoView {
    let auth = Auth::expect();
    let create = ServerAction::<CreateMyToken>::new();
    let revoke = ServerAction::<RevokeMyToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| super::my_tokens(),
    );
    view! {
        <main class="page">
            <h1>"Your account"</h1>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match auth.viewer.await {
                        Ok(Some(v)) => view! {
                            <p class="lead">
                                "Signed in as " <strong>{v.username.clone()}</strong>
                                " (" {v.role.as_str()} ")"
                            </p>
                        }.into_any(),
                        _ => view! {
                            <p class="alert warn">"Please " <A href="/login?next=/account">"sign in"</A> " first."</p>
                        }.into_any(),
                    }
                })}
            </Transition>
            <section class="card">
                <h2>"API tokens"</h2>
                <p class="hint">
                    "Scripts authenticate with " <code>"Authorization: Bearer <token>"</code>
                    ". A token acts as you; it is shown once, then only its name remains."
                </p>
                <ActionForm action=create attr:class="row">
                    <input type="text" name="name" placeholder="Token name, e.g. laptop script" maxlength="100" required
                        aria-label="Token name"/>
                    <input type="password" name="password" placeholder="Your password" required autocomplete="current-password"
                        aria-label="Your password"/>
                    <select name="expires_in_days" aria-label="Token lifetime">
                        <option value="30">"expires in 30 days"</option>
                        <option value="90" selected>"expires in 90 days"</option>
                        <option value="365">"expires in a year"</option>
                        <option value="">"never expires"</option>
                    </select>
                    <button type="submit">"Create token"</button>
                </ActionForm>
                {move || create.value().get().map(|res| match res {
                    Ok(token) => view! {
                        <div class="alert ok">
                            "Copy your new token now; it will not be shown again:"
                            <div class="secret" data-testid="new-token">{token}</div>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="alert error">{e.message}</p> }.into_any(),
                })}
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let list = tokens.await.unwrap_or_default();
                        if list.is_empty() {
                            return view! { <p class="empty">"No tokens yet."</p> }.into_any();
                        }
                        view! {
                            <table class="data">
                                <thead><tr><th>"Name"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|t| view! {
                                        <tr>
                                            <td>{t.name}</td>
                                            <td><crate::ui::When ms=t.created_at/></td>
                                            <td>{t.last_used_at.map(|ms| view! { <crate::ui::When ms/> }.into_any())
                                                .unwrap_or_else(|| "never".into_any())}</td>
                                            <td>{t.expires_at.map(|ms| view! { <crate::ui::When ms/> }.into_any())
                                                .unwrap_or_else(|| "never".into_any())}</td>
                                            <td>
                                                <ActionForm action=revoke>
                                                    <input type="hidden" name="id" value=t.id/>
                                                    <button type="submit" class="danger small">"Revoke"</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any()
                    })}
                </Transition>
            </section>
            <PasswordCard/>
        </main>
    }
}

/// Change the password (every session ends; this browser gets a fresh one) or sign out
/// of every browser at once.
#[component]
fn PasswordCard() -> impl IntoView {
    let change = ServerAction::<ChangeMyPassword>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    let error = Signal::derive(move || change.value().get().and_then(Result::err));
    view! {
        <section class="card">
            <h2>"Password and sessions"</h2>
            <ActionForm action=change attr:class="form">
                <div class="field">
                    <label for="current_password">"Current password"</label>
                    <input id="current_password" name="current_password" type="password" autocomplete="current-password" required/>
                    <FieldError error field="current_password"/>
                </div>
                <div class="field">
                    <label for="new_password">"New password"</label>
                    <input id="new_password" name="new_password" type="password" autocomplete="new-password" required minlength="10"/>
                    <FieldError error field="new_password"/>
                </div>
                <ErrorAlert error unless_field=true/>
                <button type="submit">"Change password"</button>
                {move || change.value().get().and_then(Result::ok).map(|_| view! {
                    <p class="alert ok" role="status" data-testid="password-changed">
                        "Password changed. Every other browser has been signed out."
                    </p>
                })}
            </ActionForm>
            <p class="hint">"Lost a device? End every browser session of your account, this one included."</p>
            <ActionForm action=everywhere>
                <button type="submit" class="secondary">"Sign out everywhere"</button>
            </ActionForm>
        </section>
    }
}

/// The settings page's profile card: display name, time zone, and whether others see
/// the caller's events in full.
#[component]
pub fn ProfileCard() -> impl IntoView {
    let save = ServerAction::<SavePreferences>::new();
    let prefs = Resource::new(move || save.version().get(), |_| load_preferences());
    let error = Signal::derive(move || save.value().get().and_then(Result::err));
    view! {
        <Loaded data=prefs audience={Audience::SignedIn { next: "/settings", to: " first." }} page=move |p| {
            view! {
                <section class="card">
                    <h2>"Profile"</h2>
                    <ActionForm action=save attr:class="form">
                        <div class="field">
                            <label for="display_name">"Display name"</label>
                            <input id="display_name" name="display_name" type="text" maxlength="100" value=p.display_name.clone()/>
                            <FieldError error field="display_name"/>
                        </div>
                        <div class="field">
                            <label for="time_zone">"Time zone"</label>
                            <input id="time_zone" name="time_zone" type="text" list="zones" value=p.time_zone.clone()/>
                            <datalist id="zones">
                                {COMMON_ZONES.iter().map(|z| view! { <option value=*z></option> }).collect_view()}
                            </datalist>
                            <span class="hint">"Any IANA name, e.g. America/New_York. Calendars are shown in it."</span>
                            <FieldError error field="time_zone"/>
                        </div>
                        <label class="row"><input type="checkbox" name="calendar_shared" value="on" checked=p.calendar_shared/>
                            "Others may see my events (otherwise only when I am busy)"</label>
                        <ErrorAlert error unless_field=true/>
                        <div><button type="submit">"Save"</button></div>
                        {move || matches!(save.value().get(), Some(Ok(()))).then(|| view! { <p class="alert ok">"Saved."</p> })}
                    </ActionForm>
                </section>
            }
        }/>
    }
}
