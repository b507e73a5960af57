-- +goose Up
-- The SMS gateway also carries service notices (a changed mobile number
-- told to the old number, an erasure notice), which hand it nothing beyond
-- the recipient's number: its purpose says so (processors.Defaults). An
-- operator's own wording is left alone.
UPDATE processors SET purpose = 'text-message delivery: verification codes, and notices that the mobile number was changed or the account is being erased'
    WHERE id = 'prc_smsgatewaydefault222222222' AND purpose = 'text-message delivery: verification codes';

-- +goose Down
UPDATE processors SET purpose = 'text-message delivery: verification codes'
    WHERE id = 'prc_smsgatewaydefault222222222' AND purpose = 'text-message delivery: verification codes, and notices that the mobile number was changed or the account is being erased';
