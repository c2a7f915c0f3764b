-- confd: user <-> line. A user's lines are ordered (the lowest position is
-- the user's main line); a line may serve several users, the first one
-- associated being the line's main user.
CREATE TABLE confd_user_line (
    user_id   INTEGER NOT NULL REFERENCES confd_user(id) ON DELETE CASCADE,
    line_id   INTEGER NOT NULL REFERENCES confd_line(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,          -- order of the user's lines; the lowest is the user's main line
    main_user INTEGER NOT NULL DEFAULT 0, -- 1 for the line's main (first associated) user
    PRIMARY KEY (user_id, line_id)
);
CREATE INDEX confd_user_line_line ON confd_user_line(line_id);
