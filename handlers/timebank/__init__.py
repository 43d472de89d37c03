"""The time bank (公益时间银行): points, awards, rewards and redemptions, leaderboard, honours, exports."""
