-- Assistance officers' targets and the 131 ledger (one career guidance, three job
-- recommendations, one training offer per target), with return visits.
-- The target's assistance category is personal information, so it is stored only as an
-- SM4-GCM envelope (category_enc). Recommendations in a state that holds a vacancy count
-- against the posting's headcount; the sign-off checks that under a per-posting lock.
-- depends: 0011_anchor_filing

CREATE TABLE assistance_targets (
    seeker_id text PRIMARY KEY,
    officer_id text NOT NULL,
    org_id text NOT NULL,
    district_code text NOT NULL,
    category_enc text NOT NULL,
    assigned_at timestamptz NOT NULL,
    assigned_by text NOT NULL,
    guidance_at timestamptz,
    guidance_topic text,
    training_institution text,
    training_offered_at timestamptz,
    training_response text CHECK (training_response IN ('accepted', 'declined')),
    updated_at timestamptz NOT NULL
);
CREATE INDEX assistance_targets_officer ON assistance_targets (officer_id);
CREATE INDEX assistance_targets_district ON assistance_targets (district_code);

CREATE TABLE service_131_recommendations (
    seeker_id text NOT NULL REFERENCES assistance_targets (seeker_id) ON DELETE CASCADE,
    posting_id text NOT NULL,
    district_code text NOT NULL,
    state text NOT NULL CHECK (state IN (
        'signed_off', 'delivered', 'interested', 'declined', 'interviewed', 'hired', 'not_hired'
    )),
    signed_off_at timestamptz NOT NULL,
    signed_off_by text NOT NULL,
    delivered_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (seeker_id, posting_id)
);
CREATE INDEX service_131_recommendations_posting ON service_131_recommendations (posting_id);

CREATE TABLE assistance_visits (
    visit_id text PRIMARY KEY,
    seeker_id text NOT NULL REFERENCES assistance_targets (seeker_id) ON DELETE CASCADE,
    due_on date NOT NULL,
    reason text NOT NULL CHECK (reason IN ('delivery', 'scheduled')),
    done_at timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX assistance_visits_due ON assistance_visits (seeker_id, due_on);
