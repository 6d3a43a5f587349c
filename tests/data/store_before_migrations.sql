-- made by rp_eval's Store at f0386fc (main on 2026-12-07, before migrations): 40 votes by rita, ruth, sato; a chat; an imported card
BEGIN TRANSACTION;
CREATE TABLE chat_alternatives (
	turn_id INTEGER NOT NULL, 
	group_id INTEGER NOT NULL, 
	PRIMARY KEY (turn_id), 
	FOREIGN KEY(turn_id) REFERENCES chat_turns (id) ON DELETE CASCADE
);
CREATE TABLE chat_conversations (
	id INTEGER NOT NULL, 
	title VARCHAR(200) NOT NULL, 
	persona_id VARCHAR(200) NOT NULL, 
	persona JSON NOT NULL, 
	user_name VARCHAR(100) NOT NULL, 
	system_prompt TEXT NOT NULL, 
	models JSON NOT NULL, 
	owner VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "chat_conversations" VALUES(1,'侍 × demo-mistral','samurai','{"name": "侍"}','あなた','','["demo-mistral"]','rita','2026-12-07 12:32:18.333099');
CREATE TABLE chat_edits (
	id INTEGER NOT NULL, 
	turn_id INTEGER NOT NULL, 
	"before" TEXT NOT NULL, 
	"after" TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(turn_id) REFERENCES chat_turns (id) ON DELETE CASCADE
);
CREATE TABLE chat_turns (
	id INTEGER NOT NULL, 
	conversation_id INTEGER NOT NULL, 
	role VARCHAR(20) NOT NULL, 
	side VARCHAR(2) NOT NULL, 
	content TEXT NOT NULL, 
	model VARCHAR(200) NOT NULL, 
	settings JSON NOT NULL, 
	prompt TEXT NOT NULL, 
	raw_text TEXT NOT NULL, 
	finish_reason VARCHAR(30) NOT NULL, 
	stop VARCHAR(200) NOT NULL, 
	prompt_tokens INTEGER NOT NULL, 
	new_tokens INTEGER NOT NULL, 
	seconds FLOAT NOT NULL, 
	first_token_seconds FLOAT NOT NULL, 
	tokens_per_second FLOAT NOT NULL, 
	waited_seconds FLOAT NOT NULL, 
	dropped_turns INTEGER NOT NULL, 
	discarded BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(conversation_id) REFERENCES chat_conversations (id) ON DELETE CASCADE
);
CREATE TABLE eval_replies (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	item_id VARCHAR(100) NOT NULL, 
	text TEXT NOT NULL, 
	raw_text TEXT NOT NULL, 
	finish_reason VARCHAR(20) NOT NULL, 
	cut_mid_sentence BOOLEAN NOT NULL, 
	new_tokens INTEGER NOT NULL, 
	seconds FLOAT NOT NULL, 
	metrics JSON NOT NULL, 
	extras JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (run_id, item_id), 
	FOREIGN KEY(run_id) REFERENCES eval_runs (id) ON DELETE CASCADE
);
CREATE TABLE eval_runs (
	id INTEGER NOT NULL, 
	"key" VARCHAR(64) NOT NULL, 
	model VARCHAR(200) NOT NULL, 
	task_version VARCHAR(40) NOT NULL, 
	settings JSON NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	error TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE evolve_candidates (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	generation INTEGER NOT NULL, 
	"index" INTEGER NOT NULL, 
	genotype JSON NOT NULL, 
	recipe TEXT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	fitness FLOAT, 
	test_fitness FLOAT, 
	metrics JSON NOT NULL, 
	error TEXT NOT NULL, 
	build_seconds FLOAT NOT NULL, 
	eval_seconds FLOAT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (run_id, generation, "index"), 
	FOREIGN KEY(run_id) REFERENCES evolve_runs (id) ON DELETE CASCADE
);
CREATE TABLE evolve_runs (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	genome TEXT NOT NULL, 
	settings JSON NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	generations INTEGER NOT NULL, 
	best_fitness FLOAT, 
	checkpoint TEXT NOT NULL, 
	message TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE finetune_runs (
	id INTEGER NOT NULL, 
	base_model VARCHAR(200) NOT NULL, 
	adapter VARCHAR(200) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	settings JSON NOT NULL, 
	losses JSON NOT NULL, 
	metrics JSON NOT NULL, 
	log TEXT NOT NULL, 
	folder TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE TABLE models (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	source TEXT NOT NULL, 
	parents JSON NOT NULL, 
	made_by JSON NOT NULL, 
	architecture VARCHAR(200) NOT NULL, 
	model_type VARCHAR(100) NOT NULL, 
	parameters BIGINT NOT NULL, 
	size_bytes BIGINT NOT NULL, 
	prompt_format VARCHAR(50) NOT NULL, 
	trust_remote_code BOOLEAN NOT NULL, 
	notes TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE persona_card_images (
	persona_id VARCHAR(200) NOT NULL, 
	image BLOB NOT NULL, 
	PRIMARY KEY (persona_id)
);
CREATE TABLE persona_cards (
	id INTEGER NOT NULL, 
	persona_id VARCHAR(200) NOT NULL, 
	card JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "persona_cards" VALUES(1,'old-card','{"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "古", "description": "昔のカード"}}','2026-12-07 12:32:18.341025');
CREATE TABLE rating_items (
	id VARCHAR(32) NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	rater VARCHAR(200) NOT NULL, 
	persona_id VARCHAR(200) NOT NULL, 
	models JSON NOT NULL, 
	settings JSON NOT NULL, 
	conversations JSON NOT NULL, 
	finish_reasons JSON NOT NULL, 
	source_kind VARCHAR(30), 
	source_id VARCHAR(100), 
	closed BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "rating_items" VALUES('cd510828b1ad4805b8387345ca65644d','pair','rita','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、0 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、0 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:17.993345');
INSERT INTO "rating_items" VALUES('b9668b5cf45f43a9b8f1b1746fde5449','pair','ruth','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、1 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、1 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.008567');
INSERT INTO "rating_items" VALUES('6a3c82479990432fae79dc2cd3bd1fad','pair','sato','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、2 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、2 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.020485');
INSERT INTO "rating_items" VALUES('a604d98f3fcd4b61b172d5fee1c93336','pair','rita','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、3 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、3 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.028494');
INSERT INTO "rating_items" VALUES('9477658590884c8291ffffd5a30e48a0','pair','ruth','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、4 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、4 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.036445');
INSERT INTO "rating_items" VALUES('e982fefb94fc492bbce4a6f03152c695','pair','sato','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、5 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、5 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.044434');
INSERT INTO "rating_items" VALUES('397fef0a76b6498d9554d6f737a93bb9','pair','rita','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、6 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、6 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.052434');
INSERT INTO "rating_items" VALUES('1d29d0ea68e045cfbd84b940b6f3df6d','pair','ruth','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、7 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、7 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.060414');
INSERT INTO "rating_items" VALUES('3f37804e385c4f69868983e0480d6eec','pair','sato','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、8 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、8 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.068443');
INSERT INTO "rating_items" VALUES('ec47efe0c6744fe7a85dcbb0e5ef5bbf','pair','rita','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、9 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、9 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.076455');
INSERT INTO "rating_items" VALUES('e3fbeb9414be4eac91dae5a27d79567a','pair','ruth','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、10 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、10 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.084453');
INSERT INTO "rating_items" VALUES('88fdb57c3ba6472ebc67d86bb6af4ab0','pair','sato','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、11 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、11 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.096465');
INSERT INTO "rating_items" VALUES('176ca43d89b3412684d833bfe2ceaa94','pair','rita','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、12 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、12 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.108446');
INSERT INTO "rating_items" VALUES('4b3789201be440269b2be87f4bdcd4fd','pair','ruth','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、13 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、13 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.116384');
INSERT INTO "rating_items" VALUES('13f59af4fbe04da8a5f7720e65d6f349','pair','sato','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、14 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、14 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.124424');
INSERT INTO "rating_items" VALUES('766c6d66e66f41dfb99a0ae59c580f90','pair','rita','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、15 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、15 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.132409');
INSERT INTO "rating_items" VALUES('dc8f9ae98b4f4aa9b63f6fbcad0fd3ed','pair','ruth','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、16 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、16 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.140411');
INSERT INTO "rating_items" VALUES('61657305e60f4a1cbdd10e14ead560d4','pair','sato','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、17 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、17 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.148416');
INSERT INTO "rating_items" VALUES('b3bfd1bae6da496daca5ff3c6c175d69','pair','rita','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、18 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、18 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.156408');
INSERT INTO "rating_items" VALUES('3ba1810d464e42489510765156ea1f06','pair','ruth','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、19 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、19 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.164417');
INSERT INTO "rating_items" VALUES('b75f1221637e4c728c0815d396cdf849','pair','sato','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、20 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、20 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.172424');
INSERT INTO "rating_items" VALUES('62f07e9f7ab04ffb830b5fb18bbde040','pair','rita','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、21 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、21 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.180437');
INSERT INTO "rating_items" VALUES('6e6e4b25c4c3467f8e0027f34e7ff20c','pair','ruth','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、22 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、22 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.188429');
INSERT INTO "rating_items" VALUES('e8a480ea006746ee804db370cc291138','pair','sato','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、23 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、23 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.196428');
INSERT INTO "rating_items" VALUES('b8c0bd6a98a646c699f7e2e4d67fa868','pair','rita','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、24 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、24 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.204446');
INSERT INTO "rating_items" VALUES('fe46d03a9e184c769699cec480222c55','pair','ruth','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、25 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、25 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.212429');
INSERT INTO "rating_items" VALUES('3cbccd5b45f2414f8b82d0b23cafa0c9','pair','sato','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、26 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、26 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.220441');
INSERT INTO "rating_items" VALUES('d94b2abcc5944fb49861d07f0c14d780','pair','rita','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、27 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、27 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.228415');
INSERT INTO "rating_items" VALUES('bc61157bbaf2471888c7823dc2ac4cb5','pair','ruth','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、28 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、28 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.236437');
INSERT INTO "rating_items" VALUES('1d5b312903a9438caf3c4f31abae5f43','pair','sato','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、29 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、29 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.244411');
INSERT INTO "rating_items" VALUES('d424f185fba646bda41712322b7051eb','pair','rita','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、30 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、30 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.252439');
INSERT INTO "rating_items" VALUES('617d90e9d9684ee596af194a51611b29','pair','ruth','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、31 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、31 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.260478');
INSERT INTO "rating_items" VALUES('6dd12a741ba04570b7dc349a3615bd8c','pair','sato','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、32 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、32 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.268447');
INSERT INTO "rating_items" VALUES('33e653c8c158467fb62279028ef43d7a','pair','rita','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、33 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、33 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.276444');
INSERT INTO "rating_items" VALUES('5b3c9178cd914936b87ca25c2f4dede6','pair','ruth','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、34 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、34 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.284484');
INSERT INTO "rating_items" VALUES('44db62cfce044c038df2eb2b29bf7aaf','pair','sato','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、35 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、35 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.292762');
INSERT INTO "rating_items" VALUES('b084cff67c994a03a16dd21af0919584','pair','rita','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、36 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、36 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.300432');
INSERT INTO "rating_items" VALUES('367e62ec296c4238b162e0153803737f','pair','ruth','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、37 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、37 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.308458');
INSERT INTO "rating_items" VALUES('008d88047095429193a6ab3700dc8a7b','pair','sato','samurai','["demo-llama-b", "demo-llama-a"]','{}','[[{"role": "user", "content": "こんにちは、38 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、38 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.316799');
INSERT INTO "rating_items" VALUES('93873bc63c124b5eaa6442e569b02ddd','pair','rita','samurai','["demo-llama-a", "demo-mistral"]','{}','[[{"role": "user", "content": "こんにちは、39 回目です。"}, {"role": "assistant", "content": "やあ。"}], [{"role": "user", "content": "こんにちは、39 回目です。"}, {"role": "assistant", "content": "やあ。"}]]','[["eos"], ["eos"]]',NULL,NULL,1,'2026-12-07 12:32:18.324459');
CREATE TABLE rating_scores (
	id INTEGER NOT NULL, 
	item_id VARCHAR(32) NOT NULL, 
	rater VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	persona_id VARCHAR(200) NOT NULL, 
	prompt TEXT NOT NULL, 
	model VARCHAR(200) NOT NULL, 
	conversation JSON NOT NULL, 
	reply TEXT NOT NULL, 
	finish_reason VARCHAR(20) NOT NULL, 
	scores JSON NOT NULL, 
	comment TEXT NOT NULL, 
	settings JSON NOT NULL, 
	source_kind VARCHAR(30), 
	source_id VARCHAR(100), 
	item_key VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (item_id)
);
CREATE TABLE rating_votes (
	id INTEGER NOT NULL, 
	item_id VARCHAR(32) NOT NULL, 
	rater VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	persona_id VARCHAR(200) NOT NULL, 
	prompt TEXT NOT NULL, 
	model_a VARCHAR(200) NOT NULL, 
	model_b VARCHAR(200) NOT NULL, 
	winner VARCHAR(10) NOT NULL, 
	conversation_a JSON NOT NULL, 
	conversation_b JSON NOT NULL, 
	finish_a JSON NOT NULL, 
	finish_b JSON NOT NULL, 
	turns INTEGER NOT NULL, 
	settings JSON NOT NULL, 
	item_key VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (item_id)
);
INSERT INTO "rating_votes" VALUES(1,'cd510828b1ad4805b8387345ca65644d','rita','2026-12-07 12:32:17.997137','samurai','こんにちは、0 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、0 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、0 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k0');
INSERT INTO "rating_votes" VALUES(2,'b9668b5cf45f43a9b8f1b1746fde5449','ruth','2026-12-07 12:32:18.012465','samurai','こんにちは、1 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、1 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、1 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k1');
INSERT INTO "rating_votes" VALUES(3,'6a3c82479990432fae79dc2cd3bd1fad','sato','2026-12-07 12:32:18.024476','samurai','こんにちは、2 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、2 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、2 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k2');
INSERT INTO "rating_votes" VALUES(4,'a604d98f3fcd4b61b172d5fee1c93336','rita','2026-12-07 12:32:18.028988','samurai','こんにちは、3 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、3 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、3 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k3');
INSERT INTO "rating_votes" VALUES(5,'9477658590884c8291ffffd5a30e48a0','ruth','2026-12-07 12:32:18.040419','samurai','こんにちは、4 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、4 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、4 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k4');
INSERT INTO "rating_votes" VALUES(6,'e982fefb94fc492bbce4a6f03152c695','sato','2026-12-07 12:32:18.048406','samurai','こんにちは、5 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、5 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、5 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k5');
INSERT INTO "rating_votes" VALUES(7,'397fef0a76b6498d9554d6f737a93bb9','rita','2026-12-07 12:32:18.056407','samurai','こんにちは、6 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、6 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、6 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k6');
INSERT INTO "rating_votes" VALUES(8,'1d29d0ea68e045cfbd84b940b6f3df6d','ruth','2026-12-07 12:32:18.064400','samurai','こんにちは、7 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、7 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、7 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k7');
INSERT INTO "rating_votes" VALUES(9,'3f37804e385c4f69868983e0480d6eec','sato','2026-12-07 12:32:18.072420','samurai','こんにちは、8 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、8 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、8 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k8');
INSERT INTO "rating_votes" VALUES(10,'ec47efe0c6744fe7a85dcbb0e5ef5bbf','rita','2026-12-07 12:32:18.080422','samurai','こんにちは、9 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、9 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、9 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k9');
INSERT INTO "rating_votes" VALUES(11,'e3fbeb9414be4eac91dae5a27d79567a','ruth','2026-12-07 12:32:18.092501','samurai','こんにちは、10 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、10 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、10 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k10');
INSERT INTO "rating_votes" VALUES(12,'88fdb57c3ba6472ebc67d86bb6af4ab0','sato','2026-12-07 12:32:18.100409','samurai','こんにちは、11 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、11 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、11 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k11');
INSERT INTO "rating_votes" VALUES(13,'176ca43d89b3412684d833bfe2ceaa94','rita','2026-12-07 12:32:18.112422','samurai','こんにちは、12 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、12 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、12 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k12');
INSERT INTO "rating_votes" VALUES(14,'4b3789201be440269b2be87f4bdcd4fd','ruth','2026-12-07 12:32:18.120447','samurai','こんにちは、13 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、13 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、13 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k13');
INSERT INTO "rating_votes" VALUES(15,'13f59af4fbe04da8a5f7720e65d6f349','sato','2026-12-07 12:32:18.128400','samurai','こんにちは、14 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、14 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、14 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k14');
INSERT INTO "rating_votes" VALUES(16,'766c6d66e66f41dfb99a0ae59c580f90','rita','2026-12-07 12:32:18.136417','samurai','こんにちは、15 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、15 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、15 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k15');
INSERT INTO "rating_votes" VALUES(17,'dc8f9ae98b4f4aa9b63f6fbcad0fd3ed','ruth','2026-12-07 12:32:18.144417','samurai','こんにちは、16 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、16 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、16 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k16');
INSERT INTO "rating_votes" VALUES(18,'61657305e60f4a1cbdd10e14ead560d4','sato','2026-12-07 12:32:18.152390','samurai','こんにちは、17 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、17 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、17 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k17');
INSERT INTO "rating_votes" VALUES(19,'b3bfd1bae6da496daca5ff3c6c175d69','rita','2026-12-07 12:32:18.160401','samurai','こんにちは、18 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、18 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、18 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k18');
INSERT INTO "rating_votes" VALUES(20,'3ba1810d464e42489510765156ea1f06','ruth','2026-12-07 12:32:18.168411','samurai','こんにちは、19 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、19 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、19 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k19');
INSERT INTO "rating_votes" VALUES(21,'b75f1221637e4c728c0815d396cdf849','sato','2026-12-07 12:32:18.176411','samurai','こんにちは、20 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、20 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、20 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k20');
INSERT INTO "rating_votes" VALUES(22,'62f07e9f7ab04ffb830b5fb18bbde040','rita','2026-12-07 12:32:18.184410','samurai','こんにちは、21 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、21 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、21 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k21');
INSERT INTO "rating_votes" VALUES(23,'6e6e4b25c4c3467f8e0027f34e7ff20c','ruth','2026-12-07 12:32:18.192412','samurai','こんにちは、22 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、22 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、22 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k22');
INSERT INTO "rating_votes" VALUES(24,'e8a480ea006746ee804db370cc291138','sato','2026-12-07 12:32:18.200350','samurai','こんにちは、23 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、23 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、23 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k23');
INSERT INTO "rating_votes" VALUES(25,'b8c0bd6a98a646c699f7e2e4d67fa868','rita','2026-12-07 12:32:18.208409','samurai','こんにちは、24 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、24 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、24 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k24');
INSERT INTO "rating_votes" VALUES(26,'fe46d03a9e184c769699cec480222c55','ruth','2026-12-07 12:32:18.216416','samurai','こんにちは、25 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、25 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、25 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k25');
INSERT INTO "rating_votes" VALUES(27,'3cbccd5b45f2414f8b82d0b23cafa0c9','sato','2026-12-07 12:32:18.224420','samurai','こんにちは、26 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、26 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、26 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k26');
INSERT INTO "rating_votes" VALUES(28,'d94b2abcc5944fb49861d07f0c14d780','rita','2026-12-07 12:32:18.232390','samurai','こんにちは、27 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、27 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、27 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k27');
INSERT INTO "rating_votes" VALUES(29,'bc61157bbaf2471888c7823dc2ac4cb5','ruth','2026-12-07 12:32:18.240393','samurai','こんにちは、28 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、28 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、28 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k28');
INSERT INTO "rating_votes" VALUES(30,'1d5b312903a9438caf3c4f31abae5f43','sato','2026-12-07 12:32:18.248183','samurai','こんにちは、29 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、29 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、29 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k29');
INSERT INTO "rating_votes" VALUES(31,'d424f185fba646bda41712322b7051eb','rita','2026-12-07 12:32:18.256409','samurai','こんにちは、30 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、30 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、30 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k30');
INSERT INTO "rating_votes" VALUES(32,'617d90e9d9684ee596af194a51611b29','ruth','2026-12-07 12:32:18.264407','samurai','こんにちは、31 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、31 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、31 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k31');
INSERT INTO "rating_votes" VALUES(33,'6dd12a741ba04570b7dc349a3615bd8c','sato','2026-12-07 12:32:18.271551','samurai','こんにちは、32 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、32 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、32 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k32');
INSERT INTO "rating_votes" VALUES(34,'33e653c8c158467fb62279028ef43d7a','rita','2026-12-07 12:32:18.280420','samurai','こんにちは、33 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、33 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、33 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k33');
INSERT INTO "rating_votes" VALUES(35,'5b3c9178cd914936b87ca25c2f4dede6','ruth','2026-12-07 12:32:18.289432','samurai','こんにちは、34 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、34 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、34 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k34');
INSERT INTO "rating_votes" VALUES(36,'44db62cfce044c038df2eb2b29bf7aaf','sato','2026-12-07 12:32:18.296432','samurai','こんにちは、35 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、35 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、35 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k35');
INSERT INTO "rating_votes" VALUES(37,'b084cff67c994a03a16dd21af0919584','rita','2026-12-07 12:32:18.304425','samurai','こんにちは、36 回目です。','demo-llama-b','demo-llama-a','model_a','[{"role": "user", "content": "こんにちは、36 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、36 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k36');
INSERT INTO "rating_votes" VALUES(38,'367e62ec296c4238b162e0153803737f','ruth','2026-12-07 12:32:18.312338','samurai','こんにちは、37 回目です。','demo-llama-a','demo-mistral','model_b','[{"role": "user", "content": "こんにちは、37 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、37 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k37');
INSERT INTO "rating_votes" VALUES(39,'008d88047095429193a6ab3700dc8a7b','sato','2026-12-07 12:32:18.320418','samurai','こんにちは、38 回目です。','demo-llama-b','demo-llama-a','tie','[{"role": "user", "content": "こんにちは、38 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、38 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k38');
INSERT INTO "rating_votes" VALUES(40,'93873bc63c124b5eaa6442e569b02ddd','rita','2026-12-07 12:32:18.328418','samurai','こんにちは、39 回目です。','demo-llama-a','demo-mistral','bothbad','[{"role": "user", "content": "こんにちは、39 回目です。"}, {"role": "assistant", "content": "やあ。"}]','[{"role": "user", "content": "こんにちは、39 回目です。"}, {"role": "assistant", "content": "やあ。"}]','["eos"]','["eos"]',1,'{}','k39');
CREATE UNIQUE INDEX ix_models_name ON models (name);
CREATE INDEX ix_rating_items_rater ON rating_items (rater);
CREATE INDEX ix_rating_votes_created_at ON rating_votes (created_at);
CREATE INDEX ix_rating_votes_model_a ON rating_votes (model_a);
CREATE INDEX ix_rating_votes_rater ON rating_votes (rater);
CREATE INDEX ix_rating_votes_persona_id ON rating_votes (persona_id);
CREATE INDEX ix_rating_votes_model_b ON rating_votes (model_b);
CREATE INDEX ix_rating_votes_item_key ON rating_votes (item_key);
CREATE INDEX ix_rating_scores_persona_id ON rating_scores (persona_id);
CREATE INDEX ix_rating_scores_item_key ON rating_scores (item_key);
CREATE INDEX ix_rating_scores_rater ON rating_scores (rater);
CREATE INDEX ix_rating_scores_model ON rating_scores (model);
CREATE INDEX ix_rating_scores_created_at ON rating_scores (created_at);
CREATE INDEX ix_chat_conversations_persona_id ON chat_conversations (persona_id);
CREATE INDEX ix_chat_conversations_owner ON chat_conversations (owner);
CREATE UNIQUE INDEX ix_persona_cards_persona_id ON persona_cards (persona_id);
CREATE INDEX ix_eval_runs_model ON eval_runs (model);
CREATE UNIQUE INDEX ix_eval_runs_key ON eval_runs ("key");
CREATE UNIQUE INDEX ix_evolve_runs_name ON evolve_runs (name);
CREATE INDEX ix_chat_turns_conversation_id ON chat_turns (conversation_id);
CREATE INDEX ix_eval_replies_run_id ON eval_replies (run_id);
CREATE INDEX ix_evolve_candidates_run_id ON evolve_candidates (run_id);
CREATE INDEX ix_chat_alternatives_group_id ON chat_alternatives (group_id);
CREATE INDEX ix_chat_edits_turn_id ON chat_edits (turn_id);
COMMIT;
