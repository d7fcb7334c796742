-- Every message in a room asks who chose a notification level there. Few members
-- ever do, so index just those: the question no longer scans the room's members.
CREATE INDEX members_with_notification_level ON members(room_id)
    WHERE notification_level IS NOT NULL;
