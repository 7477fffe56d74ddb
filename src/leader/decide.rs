//! The election's decisions, apart from I/O: given what this replica has seen of the Lease and when (by
//! its own monotonic clock), what to do next. Wall-clock times written in the Lease by other machines are
//! never compared: a standby takes a lease over only after it has watched it stay unchanged for the
//! holder's whole `leaseDurationSeconds` (client-go's "observed time").

use std::time::Duration;

use super::clock::Moment;

/// How long a lease lasts, when a leader that could not renew gives up, and how often replicas try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// Written into the Lease: how long a standby waits, from the last change it saw, before taking over.
    pub lease_duration: Duration,
    /// A leader that has not renewed successfully within this time (from its last successful renewal's
    /// send time) stops writing and steps down. Strictly less than `lease_duration`: the difference is the
    /// margin for a write sent just before the deadline to reach the API server.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby reads the lease.
    pub retry_period: Duration,
}

impl Timings {
    /// Checks `0 < retry_period < renew_deadline < lease_duration`.
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Self, String> {
        if retry_period.is_zero() {
            return Err("the retry period must be positive".into());
        }
        if renew_deadline >= lease_duration {
            return Err(format!(
                "the renew deadline ({renew_deadline:?}) must be shorter than the lease duration ({lease_duration:?})"
            ));
        }
        if retry_period >= renew_deadline {
            return Err(format!(
                "the retry period ({retry_period:?}) must be shorter than the renew deadline ({renew_deadline:?})"
            ));
        }
        Ok(Self {
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }
}

impl Timings {
    /// From the command line's whole seconds; without a renew deadline it is `duration - grace` (the
    /// older `--lease-grace-seconds`).
    pub fn from_seconds(
        duration: u64,
        renew_deadline: Option<u64>,
        grace: u64,
        retry_period: u64,
    ) -> Result<Self, String> {
        let renew_deadline = match renew_deadline {
            Some(deadline) => deadline,
            None => duration
                .checked_sub(grace)
                .filter(|d| *d > 0)
                .ok_or_else(|| {
                    format!("the grace ({grace} s) must be shorter than the lease duration ({duration} s)")
                })?,
        };
        Self::new(
            Duration::from_secs(duration),
            Duration::from_secs(renew_deadline),
            Duration::from_secs(retry_period),
        )
    }
}

impl Default for Timings {
    /// client-go's defaults (kube-controller-manager, kube-scheduler).
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What the decisions need of a Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Empty when nobody holds it (never held, or released).
    pub holder: String,
    /// The holder's `leaseDurationSeconds`.
    pub duration: Duration,
    pub resource_version: String,
    pub transitions: i32,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// What we know may be stale: read the lease.
    Read,
    /// There is no lease: create it, holding it.
    Create,
    /// Take the lease over: replace `from` on its resourceVersion (a conflict means someone else wrote
    /// first, and we did not get it).
    Acquire { from: Record },
    /// Renew our lease: replace `from` on its resourceVersion.
    Renew { from: Record },
    /// Someone else holds a live lease: read it again after the retry period.
    Wait,
    /// Stop leading, and write nothing more.
    StepDown(Why),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// No successful renewal within the renew deadline: the lease may be someone else's soon.
    Deadline,
    /// The lease is someone else's (or was deleted): `holder`, empty if none.
    Lost { holder: String },
}

/// The lease as last seen, and since when (our clock) it has looked like this.
#[derive(Clone, Debug)]
struct Observation {
    /// None: the lease does not exist.
    record: Option<Record>,
    since: Moment,
}

/// This replica's side of the election: what it has seen and whether it leads.
#[derive(Clone, Debug)]
pub struct Elector {
    identity: String,
    timings: Timings,
    observed: Option<Observation>,
    /// Whether `observed` can be acted on: false after a conflict, an error, or a wait.
    fresh: bool,
    /// While leading: the send time of our last successful write of the lease.
    renewed: Option<Moment>,
}

impl Elector {
    pub fn new(identity: impl Into<String>, timings: Timings) -> Self {
        Self {
            identity: identity.into(),
            timings,
            observed: None,
            fresh: false,
            renewed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// The lease as just read at `now` (None: it does not exist).
    pub fn observe(&mut self, record: Option<Record>, now: Moment) {
        let changed = self.observed.as_ref().is_none_or(|o| o.record != record);
        if changed {
            self.observed = Some(Observation { record, since: now });
        }
        self.fresh = true;
    }

    /// Our write (sent at `sent`) succeeded and produced `record`: we lead until `sent` + renew deadline.
    pub fn wrote(&mut self, record: Record, sent: Moment) {
        self.observed = Some(Observation {
            record: Some(record),
            since: sent,
        });
        self.fresh = true;
        self.renewed = Some(sent);
    }

    /// A write or read failed (a conflict, an error, a timeout): read before acting again.
    pub fn failed(&mut self) {
        self.fresh = false;
    }

    /// A standby's wait is over: what it saw may have changed.
    pub fn waited(&mut self) {
        if self.renewed.is_none() {
            self.fresh = false;
        }
    }

    /// The lease as last read or written (None if not seen, or it does not exist).
    pub fn observed(&self) -> Option<&Record> {
        self.observed.as_ref()?.record.as_ref()
    }

    pub fn is_leading(&self) -> bool {
        self.renewed.is_some()
    }

    /// While leading: the instant from which we may no longer write.
    pub fn valid_until(&self) -> Option<Moment> {
        self.renewed.map(|sent| sent + self.timings.renew_deadline)
    }

    /// The next step at `now`.
    pub fn decide(&self, now: Moment) -> Action {
        if let Some(until) = self.valid_until() {
            if now >= until {
                return Action::StepDown(Why::Deadline);
            }
            if !self.fresh {
                return Action::Read;
            }
            return match self.observed.as_ref().and_then(|o| o.record.as_ref()) {
                // Ours, on the latest resourceVersion we know (our own write, or one whose answer we missed).
                Some(r) if r.holder == self.identity => Action::Renew { from: r.clone() },
                Some(r) => Action::StepDown(Why::Lost {
                    holder: r.holder.clone(),
                }),
                None => Action::StepDown(Why::Lost {
                    holder: String::new(),
                }),
            };
        }
        let Some(observed) = self.observed.as_ref().filter(|_| self.fresh) else {
            return Action::Read;
        };
        match &observed.record {
            None => Action::Create,
            Some(r) if r.holder.is_empty() => Action::Acquire { from: r.clone() },
            // Held, by someone else or by an earlier process with our name: taken only once it has not
            // changed for a whole lease duration by our clock.
            Some(r) if now.saturating_duration_since(observed.since) >= r.duration => {
                Action::Acquire { from: r.clone() }
            }
            Some(_) => Action::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn timings() -> Timings {
        Timings::default()
    }

    fn record(holder: &str, rv: &str) -> Record {
        Record {
            holder: holder.into(),
            duration: 15 * S,
            resource_version: rv.into(),
            transitions: 3,
        }
    }

    fn elector() -> Elector {
        Elector::new("me", timings())
    }

    /// An elector that acquired the lease with a write sent at `sent` (resourceVersion "10").
    fn leader(sent: Moment) -> Elector {
        let mut e = elector();
        e.observe(Some(record("", "9")), sent);
        e.wrote(record("me", "10"), sent);
        e
    }

    #[test]
    fn timings_need_retry_below_deadline_below_duration() {
        assert!(Timings::new(15 * S, 10 * S, 2 * S).is_ok());
        assert!(Timings::new(15 * S, 15 * S, 2 * S).is_err());
        assert!(Timings::new(15 * S, 20 * S, 2 * S).is_err());
        assert!(Timings::new(15 * S, 10 * S, 10 * S).is_err());
        assert!(Timings::new(15 * S, 10 * S, Duration::ZERO).is_err());
    }

    #[test]
    fn the_renew_deadline_defaults_to_duration_minus_grace() {
        let t = Timings::from_seconds(15, None, 5, 2).unwrap();
        assert_eq!(t, Timings::default());
        assert_eq!(
            Timings::from_seconds(15, Some(12), 5, 2)
                .unwrap()
                .renew_deadline,
            12 * S
        );
        assert!(Timings::from_seconds(6, None, 6, 1).is_err());
        assert!(Timings::from_seconds(6, None, 7, 1).is_err());
        // A 6 s lease with 2 s grace and the default 2 s retry (what the older flags gave) stays valid.
        assert!(Timings::from_seconds(6, None, 2, 2).is_ok());
    }

    #[test]
    fn nothing_is_decided_before_a_read() {
        assert_eq!(elector().decide(Moment::now()), Action::Read);
    }

    #[test]
    fn a_missing_lease_is_created() {
        let now = Moment::now();
        let mut e = elector();
        e.observe(None, now);
        assert_eq!(e.decide(now), Action::Create);
    }

    #[test]
    fn a_free_lease_is_acquired_at_once() {
        let now = Moment::now();
        let mut e = elector();
        e.observe(Some(record("", "5")), now);
        assert_eq!(
            e.decide(now),
            Action::Acquire {
                from: record("", "5")
            }
        );
    }

    #[test]
    fn a_held_lease_is_waited_for_until_unchanged_for_its_duration_by_our_clock() {
        let t0 = Moment::now();
        let mut e = elector();
        // However old its renewTime (not even looked at): the clock starts when we first see it.
        e.observe(Some(record("other", "5")), t0);
        assert_eq!(e.decide(t0), Action::Wait);
        e.waited();
        e.observe(Some(record("other", "5")), t0 + 14 * S);
        assert_eq!(e.decide(t0 + 14 * S), Action::Wait);
        e.waited();
        e.observe(Some(record("other", "5")), t0 + 15 * S);
        assert_eq!(
            e.decide(t0 + 15 * S),
            Action::Acquire {
                from: record("other", "5")
            }
        );
    }

    #[test]
    fn a_renewal_seen_restarts_the_clock() {
        let t0 = Moment::now();
        let mut e = elector();
        e.observe(Some(record("other", "5")), t0);
        e.waited();
        e.observe(Some(record("other", "6")), t0 + 10 * S);
        e.waited();
        e.observe(Some(record("other", "6")), t0 + 20 * S);
        assert_eq!(e.decide(t0 + 20 * S), Action::Wait);
        e.waited();
        e.observe(Some(record("other", "6")), t0 + 25 * S);
        assert_eq!(
            e.decide(t0 + 25 * S),
            Action::Acquire {
                from: record("other", "6")
            }
        );
    }

    #[test]
    fn the_holders_duration_counts_not_ours() {
        let t0 = Moment::now();
        let mut e = elector();
        let long = Record {
            duration: 60 * S,
            ..record("other", "5")
        };
        e.observe(Some(long.clone()), t0);
        e.waited();
        e.observe(Some(long.clone()), t0 + 30 * S);
        assert_eq!(e.decide(t0 + 30 * S), Action::Wait);
        e.waited();
        e.observe(Some(long.clone()), t0 + 60 * S);
        assert_eq!(e.decide(t0 + 60 * S), Action::Acquire { from: long });
    }

    #[test]
    fn a_lease_in_our_name_from_an_earlier_process_is_waited_for_too() {
        let t0 = Moment::now();
        let mut e = elector();
        e.observe(Some(record("me", "5")), t0);
        assert_eq!(e.decide(t0), Action::Wait);
    }

    #[test]
    fn a_standby_reads_again_after_waiting() {
        let t0 = Moment::now();
        let mut e = elector();
        e.observe(Some(record("other", "5")), t0);
        e.waited();
        assert_eq!(e.decide(t0 + 20 * S), Action::Read);
    }

    #[test]
    fn a_conflict_on_acquiring_means_someone_else_won() {
        let t0 = Moment::now();
        let mut e = elector();
        e.observe(Some(record("", "5")), t0);
        assert!(matches!(e.decide(t0), Action::Acquire { .. }));
        // 409: not leading, and what we saw is stale.
        e.failed();
        assert!(!e.is_leading());
        assert_eq!(e.decide(t0), Action::Read);
        e.observe(Some(record("other", "6")), t0 + S);
        assert_eq!(e.decide(t0 + S), Action::Wait);
        assert_eq!(e.decide(t0 + 15 * S), Action::Wait, "the clock restarted");
    }

    #[test]
    fn the_leader_renews_on_its_own_resource_version() {
        let t0 = Moment::now();
        let mut e = leader(t0);
        assert!(e.is_leading());
        assert_eq!(
            e.decide(t0 + 2 * S),
            Action::Renew {
                from: record("me", "10")
            }
        );
        e.wrote(record("me", "11"), t0 + 2 * S);
        assert_eq!(
            e.decide(t0 + 4 * S),
            Action::Renew {
                from: record("me", "11")
            }
        );
        assert_eq!(e.valid_until(), Some(t0 + 12 * S));
    }

    #[test]
    fn the_leader_steps_down_at_the_renew_deadline_before_the_lease_expires() {
        let t0 = Moment::now();
        let e = leader(t0);
        assert_eq!(e.valid_until(), Some(t0 + 10 * S));
        assert!(matches!(
            e.decide(t0 + 10 * S - S / 10),
            Action::Renew { .. }
        ));
        assert_eq!(e.decide(t0 + 10 * S), Action::StepDown(Why::Deadline));
        // Also when it comes back long after (a frozen process): the deadline wins over anything it saw.
        assert_eq!(e.decide(t0 + 600 * S), Action::StepDown(Why::Deadline));
    }

    #[test]
    fn validity_counts_from_the_send_time_of_the_renewal() {
        let t0 = Moment::now();
        let mut e = leader(t0);
        // A renewal sent at 3 s whose answer came back at 9 s: valid until 3 + 10 s.
        e.wrote(record("me", "11"), t0 + 3 * S);
        assert_eq!(e.valid_until(), Some(t0 + 13 * S));
    }

    #[test]
    fn a_failed_renewal_is_retried_after_a_read_until_the_deadline() {
        let t0 = Moment::now();
        let mut e = leader(t0);
        e.failed();
        assert_eq!(e.decide(t0 + 2 * S), Action::Read);
        // The write had gone through after all (its answer was lost): still ours, renewed on the new version.
        e.observe(Some(record("me", "11")), t0 + 3 * S);
        assert_eq!(
            e.decide(t0 + 3 * S),
            Action::Renew {
                from: record("me", "11")
            }
        );
        e.failed();
        assert_eq!(e.decide(t0 + 10 * S), Action::StepDown(Why::Deadline));
    }

    #[test]
    fn a_conflict_on_renewing_shows_who_took_over() {
        let t0 = Moment::now();
        let mut e = leader(t0);
        e.failed();
        e.observe(Some(record("other", "12")), t0 + 2 * S);
        assert_eq!(
            e.decide(t0 + 2 * S),
            Action::StepDown(Why::Lost {
                holder: "other".into()
            })
        );
    }

    #[test]
    fn a_released_or_deleted_lease_is_lost_for_the_leader() {
        let t0 = Moment::now();
        let mut e = leader(t0);
        e.failed();
        e.observe(Some(record("", "12")), t0 + S);
        assert_eq!(
            e.decide(t0 + S),
            Action::StepDown(Why::Lost {
                holder: String::new()
            })
        );
        let mut e = leader(t0);
        e.failed();
        e.observe(None, t0 + S);
        assert!(matches!(
            e.decide(t0 + S),
            Action::StepDown(Why::Lost { .. })
        ));
    }

    #[test]
    fn waiting_does_not_make_the_leader_read() {
        let t0 = Moment::now();
        let mut e = leader(t0);
        e.waited();
        assert!(matches!(e.decide(t0 + 2 * S), Action::Renew { .. }));
    }
}
