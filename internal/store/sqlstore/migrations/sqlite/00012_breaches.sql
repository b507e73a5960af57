-- The breach register (GDPR Art. 33(5)): every personal data breach, with
-- its facts, effects and the remedial action taken, and the notification
-- of the supervisory authority (due 72 hours after detection, Art. 33(1)).
-- It holds no account IDs: approximate numbers of people and records only.
-- recorded_by is a staff ID. categories is a JSON list of inventory
-- category IDs. A notice to the affected people (Art. 34) is a notice run
-- whose document_id is the breach ID; notice runs gain an audience: 'all'
-- (every active account) or 'listed' (the accounts named when the run was
-- created, whose inbox messages the run posted at once).

-- +goose Up
CREATE TABLE breaches (
    id                    TEXT NOT NULL PRIMARY KEY,
    detected_at           BIGINT NOT NULL,
    nature                TEXT NOT NULL,
    categories            TEXT NOT NULL,
    people                BIGINT,
    records               BIGINT,
    consequences          TEXT NOT NULL DEFAULT '',
    measures_taken        TEXT NOT NULL DEFAULT '',
    measures_proposed     TEXT NOT NULL DEFAULT '',
    risk                  TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL,
    authority_notified_at BIGINT,
    authority_reference   TEXT NOT NULL DEFAULT '',
    recorded_by           TEXT NOT NULL,
    recorded_at           BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    closed_at             BIGINT
);
CREATE INDEX breaches_detected ON breaches (detected_at);
CREATE INDEX breaches_closed ON breaches (closed_at) WHERE closed_at IS NOT NULL;

ALTER TABLE notice_runs ADD COLUMN audience TEXT NOT NULL DEFAULT 'all';

-- +goose Down
ALTER TABLE notice_runs DROP COLUMN audience;
DROP TABLE breaches;
