-- Central store roles (docs/agent.md). Run as a superuser once; then run the first agent
-- with gatehouse_owner's URL so that its migration creates the tables, then the GRANTs below,
-- then switch the agents to gatehouse_agent.
CREATE ROLE gatehouse_owner LOGIN PASSWORD 'change-me';
CREATE SCHEMA gatehouse AUTHORIZATION gatehouse_owner;

CREATE ROLE gatehouse_agent LOGIN PASSWORD 'change-me';
GRANT USAGE ON SCHEMA gatehouse TO gatehouse_agent;

CREATE ROLE gatehouse_auditor LOGIN PASSWORD 'change-me';
GRANT USAGE ON SCHEMA gatehouse TO gatehouse_auditor;

-- After the first migration:
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA gatehouse TO gatehouse_agent;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA gatehouse TO gatehouse_agent;
GRANT SELECT ON ALL TABLES IN SCHEMA gatehouse TO gatehouse_auditor;
-- Nobody but the owner holds UPDATE, DELETE, TRUNCATE or TRIGGER; the append-only triggers
-- refuse changes even from roles that do, unless they disable triggers (owner, superuser).
