//! The vocabulary of group therapy: models and attendance.

text_enum! {
    /// The therapeutic model of a group (SAMHSA TIP 41's group types).
    pub enum GroupModel ("group model") {
        /// Teaches about substance use and its consequences.
        Psychoeducation => "psychoeducation",
        /// Builds skills (refusal, coping, relapse prevention).
        SkillsDevelopment => "skills_development",
        /// Cognitive-behavioral therapy.
        CognitiveBehavioral => "cognitive_behavioral",
        /// Mutual support.
        Support => "support",
        /// Interpersonal process group.
        InterpersonalProcess => "interpersonal_process",
        /// Integrates several models.
        Integrated => "integrated",
    }
}

text_enum! {
    /// How a member on the roster attended one session.
    pub enum AttendanceStatus ("attendance status") {
        /// Attended.
        Present => "present",
        /// Attended, arriving late.
        Late => "late",
        /// Did not attend, with a reason the group accepted.
        Excused => "excused",
        /// Did not attend.
        Absent => "absent",
    }
}

impl AttendanceStatus {
    /// Whether this counts toward the engagement dose (present or late).
    pub const fn attended(self) -> bool {
        matches!(self, Self::Present | Self::Late)
    }
}

text_enum! {
    /// Where a group session is.
    pub enum SessionStatus ("session status") {
        /// Planned for a time (SessionScheduled).
        Scheduled => "scheduled",
        /// Held, with attendance recorded (SessionHeld).
        Held => "held",
        /// Cancelled before it was held (SessionCancelled).
        Cancelled => "cancelled",
    }
}
