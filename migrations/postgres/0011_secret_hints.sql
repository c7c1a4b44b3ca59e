-- Credential hints used to be a secret's first four characters whatever its length, which showed
-- a short secret whole. The rule now (`domain::integration::secret_hint`) shows nothing of a
-- secret under 16 characters and at most an eighth of a longer one. A stored hint cannot be
-- recomputed here (the secrets are encrypted, and their length is unknown), so every stored hint
-- becomes the one of a short secret, which reveals nothing; saving a secret again gives it a hint
-- under the new rule.
UPDATE integrations SET secret_hint = '…' WHERE secret_hint IS NOT NULL;
UPDATE mailers SET credential_hints =
    COALESCE((SELECT jsonb_object_agg(key, to_jsonb('…'::text)) FROM jsonb_each(mailers.credential_hints::jsonb)), '{}'::jsonb)::text;
