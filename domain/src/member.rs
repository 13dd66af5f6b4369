//! The member's pipeline, stream `member-<uuid>`: from referral through intake,
//! treatment, discharge and aftercare to alumni, with consents, goals, check-ins,
//! follow-ups, disclosures and erasure.
//!
//! Start with [`decide`] (the rules), then [`MemberState::evolve`] (what the events mean).

mod command;
mod decide;
mod error;
mod event;
mod identity;
mod state;

pub use command::{
    AchieveGoal, AdmitMember, ChangeLevelOfCare, ChangeMemberDetails, CompleteCheckIn,
    CompleteIntake, DetailChange, DischargeMember, EnrollAlumni, EraseMember, GiveConsent,
    MarkCheckInMissed, MarkFollowUpDue, MemberCommand, ReadmitMember, RecordDisclosure,
    RecordFollowUp, ReferMember, RevokeConsent, RevokeConsentsOfScope, ScheduleCheckIn, SetGoal,
};
pub use decide::decide;
pub use error::MemberError;
pub use event::{
    AftercareStarted, AlumniEnrolled, CheckInCompleted, CheckInMissed, CheckInScheduled,
    ConsentGiven, ConsentRevoked, DisclosureMade, FollowUpCompleted, FollowUpDue, GoalAchieved,
    GoalSet, IntakeCompleted, LevelOfCareChanged, MemberAdmitted, MemberDetailsChanged,
    MemberDischarged, MemberErased, MemberEvent, MemberReadmitted, MemberReferred, PlannedFollowUp,
};
pub use state::{CheckIn, FollowUp, Goal, MemberState};

use crate::decider::Decider;

/// The state after one more event (the free-function form of [`MemberState::evolve`]).
pub fn evolve(state: MemberState, event: &MemberEvent) -> MemberState {
    state.evolve(event)
}

/// The member stream's rules as a [`Decider`], for generic command handling and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemberDecider;

impl Decider for MemberDecider {
    type State = MemberState;
    type Command = MemberCommand;
    type Event = MemberEvent;
    type Error = MemberError;

    fn decide(
        state: &MemberState,
        command: MemberCommand,
    ) -> Result<Vec<MemberEvent>, MemberError> {
        decide(state, command)
    }

    fn evolve(state: MemberState, event: &MemberEvent) -> MemberState {
        state.evolve(event)
    }
}
